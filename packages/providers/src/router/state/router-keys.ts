/**
 * Redis key names of the router state.
 *
 * Every key lives under `${prefix}:router:` and carries the provider as a hash
 * tag: `${prefix}:router:{openai}:target:gpt-4o:state`. A script touches the
 * target (circuit, probes, in-flight) and the keys (limits, cooldown) of one
 * provider at once, so all of one provider's keys must hash to the same Redis
 * Cluster slot; the tag does that. It names only the provider (not the prefix) so
 * that every key still starts with `${prefix}:`, which is what lets tests and
 * operators find them with one pattern; two deployments on different prefixes
 * merely share slots. Whatever braces a prefix or provider name holds, the tag
 * (first `{` to the next `}`) lies inside the common `${prefix}:router:{provider}`
 * start, so one provider's keys never split across slots.
 *
 * Model and key ids come last but one, before a fixed suffix without colons, so
 * ids that contain colons (`llama3:8b`) cannot collide.
 */

/** The keys of one provider+model. */
export interface TargetKeys {
  /** Hash: circuit (`state`, `openUntil`), `ewma`, last error, and the outcome buckets (`tN`, `cN`, `eN`). */
  state: string;
  /** Sorted set of failure call ids scored by time: the breaker's window. */
  failures: string;
  /** Sorted set of half-open probe call ids scored by lease expiry. */
  probes: string;
  /** Sorted set of call ids in flight scored by lease expiry. */
  inFlight: string;
  /** List of the latest successful call latencies, newest first. */
  latency: string;
}

/** The keys of one provider key. */
export interface ProviderKeyKeys {
  /** Sorted set of `${tokens}:${callId}` scored by admission time: the RPM and TPM window. */
  log: string;
  /** Hash: `tokens` (sum over `log`), `day` (UTC day number) and `today` (requests that day). */
  usage: string;
  /** String: `cooling:${untilMs}` (with a TTL) or `exhausted:${reason}` (without). */
  block: string;
}

function providerTag(prefix: string, provider: string): string {
  return `${prefix}:router:{${provider}}`;
}

/** Keys of the circuit, in-flight slots and figures of one provider+model. */
export function targetKeys(prefix: string, provider: string, model: string): TargetKeys {
  const base = `${providerTag(prefix, provider)}:target:${model}`;
  return {
    state: `${base}:state`,
    failures: `${base}:failures`,
    probes: `${base}:probes`,
    inFlight: `${base}:inflight`,
    latency: `${base}:latency`,
  };
}

/** Keys of the limits and standing of one provider key. */
export function providerKeyKeys(prefix: string, provider: string, keyId: string): ProviderKeyKeys {
  const base = `${providerTag(prefix, provider)}:key:${keyId}`;
  return { log: `${base}:log`, usage: `${base}:usage`, block: `${base}:block` };
}
