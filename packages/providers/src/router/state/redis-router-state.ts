import type { ChainableCommander, Redis } from "ioredis";
import type {
  AcquireRequest,
  AcquireResult,
  BreakerPolicy,
  CircuitState,
  KeyLimits,
  KeyState,
  KeyStats,
  ReleaseRequest,
  RouterState,
  TargetStats,
} from "../types.ts";
import { ACQUIRE_SCRIPT } from "./acquire-script.ts";
import { KEY_STATS_SCRIPT } from "./key-stats-script.ts";
import { RATE_WINDOW_MS } from "./lua-prelude.ts";
import { RELEASE_SCRIPT } from "./release-script.ts";
import { providerKeyKeys, targetKeys } from "./router-keys.ts";
import { TARGET_STATS_SCRIPT } from "./target-stats-script.ts";

/** Options for {@link RedisRouterState}. */
export interface RedisRouterStateOptions {
  /** A connection of its own or shared; the state defines its scripts on it (`genqRouter*` commands). */
  redis: Redis;
  /** Every key lives under `${prefix}:router:`. */
  prefix: string;
  /** Read on every call, so a configuration reload takes effect at once. */
  breaker: () => BreakerPolicy;
  /**
   * The clock in epoch ms, for tests. Without it the scripts use Redis server
   * time, which every process shares; with it, time is whatever the caller says.
   */
  now?: () => number;
  /**
   * Added to the 60-second window of RPM and TPM limits at admission: a call is
   * admitted only while fewer than `rpm` calls were admitted in the last 60 s plus
   * this margin. Calls reach a provider some time after they are admitted
   * (connection set-up, retries of a lost packet, clock skew), and a provider that
   * counts arrivals in its own 60 s window must never see `rpm + 1`.
   * @defaultValue 2000
   */
  rateWindowMarginMs?: number;
}

/** See {@link RedisRouterStateOptions.rateWindowMarginMs}. */
export const DEFAULT_RATE_WINDOW_MARGIN_MS = 2_000;

/** Error messages and exhaustion reasons are stored up to this many characters. */
const MAX_TEXT_LENGTH = 300;

type ScriptArgument = string | number;

/** The scripts as ioredis commands (`defineCommand` adds them at run time; EVALSHA with a NOSCRIPT fallback). */
interface RouterCommands {
  genqRouterAcquire(numberOfKeys: number, ...args: ScriptArgument[]): Promise<unknown>;
  genqRouterRelease(...args: ScriptArgument[]): Promise<unknown>;
}

interface RouterStatsPipeline extends ChainableCommander {
  genqRouterTargetStats(...args: ScriptArgument[]): RouterStatsPipeline;
  genqRouterKeyStats(...args: ScriptArgument[]): RouterStatsPipeline;
}

type AcquireReply =
  | [admitted: 1, keyId: string, probe: 0 | 1]
  | [admitted: 0, reason: string, retryAfterMs: number];

type TargetStatsReply = [
  circuit: CircuitState,
  openUntil: string | null,
  inFlight: number,
  ewma: string | null,
  calls: number,
  errors: number,
  errorCode: string | null,
  errorMessage: string | null,
  errorAt: string | null,
  latencies: string[],
];

type KeyStatsReply = [
  state: KeyState,
  untilMs: string | null,
  reason: string | null,
  requestsLastMinute: number,
  tokensLastMinute: number,
  requestsToday: number,
];

const FAILURE_REASONS = new Set(["circuit_open", "rate_limited", "no_key"]);

/**
 * The router's shared state in Redis: each of `acquire` and `release` is one
 * Lua script (one round trip, atomic across every worker process); the stats
 * are one pipeline of read-only scripts. See `router-keys.ts` for the key layout
 * and the scripts for the window algorithms.
 */
export class RedisRouterState implements RouterState {
  readonly #redis: Redis & RouterCommands;
  readonly #prefix: string;
  readonly #breaker: () => BreakerPolicy;
  readonly #now: (() => number) | undefined;
  readonly #rateWindowMs: number;

  constructor(options: RedisRouterStateOptions) {
    if (options.prefix.length === 0) throw new TypeError("RedisRouterState: prefix must not be empty");
    if (typeof options.breaker !== "function")
      throw new TypeError("RedisRouterState: breaker must be a function");
    const redis = options.redis;
    redis.defineCommand("genqRouterAcquire", { lua: ACQUIRE_SCRIPT });
    redis.defineCommand("genqRouterRelease", { lua: RELEASE_SCRIPT, numberOfKeys: 8 });
    redis.defineCommand("genqRouterTargetStats", {
      lua: TARGET_STATS_SCRIPT,
      numberOfKeys: 3,
      readOnly: true,
    });
    redis.defineCommand("genqRouterKeyStats", { lua: KEY_STATS_SCRIPT, numberOfKeys: 3, readOnly: true });
    this.#redis = redis as Redis & RouterCommands;
    this.#prefix = options.prefix;
    this.#breaker = options.breaker;
    this.#now = options.now;
    const margin = options.rateWindowMarginMs ?? DEFAULT_RATE_WINDOW_MARGIN_MS;
    if (!Number.isInteger(margin) || margin < 0)
      throw new TypeError("RedisRouterState: rateWindowMarginMs must be a whole number of ms, at least 0");
    this.#rateWindowMs = RATE_WINDOW_MS + margin;
  }

  async acquire(request: AcquireRequest): Promise<AcquireResult> {
    const target = targetKeys(this.#prefix, request.provider, request.model);
    const keys = [target.state, target.probes, target.inFlight];
    const args: ScriptArgument[] = [
      this.#clockArgument(),
      request.callId,
      toCount(request.tokens),
      Math.max(1, Math.ceil(request.leaseMs)),
      Math.max(1, Math.floor(this.#breaker().halfOpenProbes)),
      request.keys.length,
      this.#rateWindowMs,
    ];
    // Stable: within a priority, the given order breaks ties. The script stops at the first worse group.
    for (const key of request.keys.toSorted((a, b) => a.priority - b.priority)) {
      const names = providerKeyKeys(this.#prefix, request.provider, key.id);
      keys.push(names.log, names.usage, names.block);
      args.push(
        key.id,
        key.priority,
        limitOf(key.limits.rpm),
        limitOf(key.limits.tpm),
        limitOf(key.limits.rpd),
      );
    }
    const reply = (await this.#redis.genqRouterAcquire(keys.length, ...keys, ...args)) as AcquireReply;
    if (reply[0] === 1) return { ok: true, keyId: reply[1], probe: reply[2] === 1 };
    const reason = reply[1];
    if (!FAILURE_REASONS.has(reason)) throw new Error(`RedisRouterState: unexpected acquire reply ${reason}`);
    return {
      ok: false,
      reason: reason as "circuit_open" | "rate_limited" | "no_key",
      ...(reply[2] >= 0 ? { retryAfterMs: reply[2] } : {}),
    };
  }

  async release(request: ReleaseRequest): Promise<void> {
    const target = targetKeys(this.#prefix, request.provider, request.model);
    const key = providerKeyKeys(this.#prefix, request.provider, request.keyId);
    const breaker = this.#breaker();
    const action = request.keyAction;
    await this.#redis.genqRouterRelease(
      target.state,
      target.failures,
      target.probes,
      target.inFlight,
      target.latency,
      key.log,
      key.usage,
      key.block,
      this.#clockArgument(),
      request.callId,
      request.probe ? 1 : 0,
      Math.max(0, Math.round(request.latencyMs)),
      toCount(request.reservedTokens),
      toCount(request.usedTokens),
      request.error === undefined ? 0 : 1,
      request.error?.code ?? "",
      truncate(request.error?.message ?? ""),
      request.error !== undefined && request.countsAsFailure ? 1 : 0,
      action?.kind ?? "",
      action?.kind === "cooldown" ? Math.ceil(action.cooldownMs) : 0,
      action?.kind === "exhausted" ? truncate(action.reason) : "",
      breaker.failureThreshold,
      breaker.windowMs,
      breaker.openMs,
      Math.max(1, Math.ceil(breaker.keyRetryMs)),
    );
  }

  async targetStats(targets: Array<{ provider: string; model: string }>): Promise<TargetStats[]> {
    if (targets.length === 0) return [];
    const pipeline = this.#redis.pipeline() as RouterStatsPipeline;
    const clock = this.#clockArgument();
    for (const target of targets) {
      const keys = targetKeys(this.#prefix, target.provider, target.model);
      pipeline.genqRouterTargetStats(keys.state, keys.inFlight, keys.latency, clock);
    }
    const replies = await execPipeline<TargetStatsReply>(pipeline);
    return targets.map((target, index) => {
      const [circuit, openUntil, inFlight, ewma, calls, errors, errorCode, errorMessage, errorAt, latencies] =
        replies[index]!;
      const sorted = latencies.map(Number).sort((a, b) => a - b);
      return {
        provider: target.provider,
        model: target.model,
        circuit,
        ...(openUntil !== null ? { circuitOpenUntil: Number(openUntil) } : {}),
        inFlight,
        ...(ewma !== null ? { ewmaLatencyMs: Number(ewma) } : {}),
        ...(sorted.length > 0
          ? { p50LatencyMs: percentile(sorted, 0.5), p95LatencyMs: percentile(sorted, 0.95) }
          : {}),
        calls,
        errors,
        ...(errorCode !== null
          ? {
              lastError: {
                code: errorCode,
                message: errorMessage ?? "",
                at: new Date(Number(errorAt)).toISOString(),
              },
            }
          : {}),
      };
    });
  }

  async keyStats(keys: Array<{ provider: string; keyId: string; limits: KeyLimits }>): Promise<KeyStats[]> {
    if (keys.length === 0) return [];
    const pipeline = this.#redis.pipeline() as RouterStatsPipeline;
    const clock = this.#clockArgument();
    for (const key of keys) {
      const names = providerKeyKeys(this.#prefix, key.provider, key.keyId);
      pipeline.genqRouterKeyStats(names.log, names.usage, names.block, clock);
    }
    const replies = await execPipeline<KeyStatsReply>(pipeline);
    return keys.map((key, index) => {
      const [state, untilMs, reason, requestsLastMinute, tokensLastMinute, requestsToday] = replies[index]!;
      return {
        provider: key.provider,
        keyId: key.keyId,
        state,
        ...(untilMs !== null ? { until: Number(untilMs) } : {}),
        ...(reason !== null ? { reason } : {}),
        requestsLastMinute,
        tokensLastMinute,
        requestsToday,
      };
    });
  }

  async resetKey(provider: string, keyId: string): Promise<void> {
    await this.#redis.del(providerKeyKeys(this.#prefix, provider, keyId).block);
  }

  /** The scripts' first argument: the injected time, or '' for Redis server time. */
  #clockArgument(): string {
    return this.#now === undefined ? "" : String(Math.floor(this.#now()));
  }
}

/** Limits travel as integers, -1 meaning unlimited. */
function limitOf(limit: number | undefined): number {
  return limit === undefined ? -1 : Math.max(0, Math.floor(limit));
}

/** Token counts travel as non-negative integers (they are part of log members, so acquire and release must agree). */
function toCount(value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.ceil(value)) : 0;
}

/** Cut at a code point, never inside a surrogate pair. */
function truncate(text: string): string {
  if (text.length <= MAX_TEXT_LENGTH) return text;
  return Array.from(text).slice(0, MAX_TEXT_LENGTH).join("");
}

/** Nearest-rank percentile of an ascending, non-empty list. */
function percentile(sorted: number[], fraction: number): number {
  const rank = Math.max(1, Math.ceil(fraction * sorted.length));
  return sorted[rank - 1]!;
}

async function execPipeline<T>(pipeline: ChainableCommander): Promise<T[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply as T;
  });
}
