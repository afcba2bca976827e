import type { PriceCatalog } from "../price-catalog.ts";
import type { Provider } from "../provider.ts";

/** What a model can do; a route or job asks for one and only capable models are candidates. */
export type Capability = "text" | "image";

/** How the router orders the healthy candidates of one tier. */
export type StrategyName = "priority" | "cost" | "latency" | "weighted" | "least-busy";

/** The adapter family a configured provider uses. */
export type ProviderType = "openai" | "openai-compatible" | "anthropic" | "gemini" | "mock";

/** Per-key request limits; absent means unlimited. */
export interface KeyLimits {
  /** Requests per rolling minute. */
  rpm?: number;
  /** Tokens (estimated input + max output, corrected after the call) per rolling minute. */
  tpm?: number;
  /** Requests per UTC day. */
  rpd?: number;
}

/** One API key of a provider, with its own client (adapters take the key at construction). */
export interface ProviderKey {
  /** Unique within its provider; shown to operators, never the secret. */
  id: string;
  /** Lower runs first (1 before 2). */
  priority: number;
  limits: KeyLimits;
  /** The adapter bound to this key. */
  client: Provider;
  /** A short hint of the secret for operators (`sk-…abcd`), never the secret itself. */
  hint: string;
}

/** A model offered by a provider. */
export interface ModelSpec {
  id: string;
  capabilities: Capability[];
  contextWindow?: number;
  maxOutputTokens?: number;
  /** Local models with no price: allowed without a price entry. */
  zeroCost: boolean;
  /** What an image model accepts; absent lists mean "not restricted here" (the provider decides). */
  image?: ImageOptions;
}

/** The sizes, qualities and image count an image model accepts. */
export interface ImageOptions {
  sizes?: string[];
  qualities?: string[];
  maxImages?: number;
}

/** A configured provider: its keys (one client each) and its models. */
export interface ProviderDeployment {
  name: string;
  type: ProviderType;
  keys: ProviderKey[];
  models: Map<string, ModelSpec>;
  /** The model used when a job names this provider and no model. */
  defaultModel?: string;
  /**
   * Whether jobs may run on users' own keys (BYO) here. Only an upstream that
   * checks the key and bills its owner may accept them; the providers file refuses
   * it for the mock, keyless servers and providers whose auth sits in operator
   * headers. The router calls a user's client only on a provider that accepts them.
   */
  acceptsUserKeys: boolean;
  /**
   * An adapter for a user's own key, configured like the others but without the
   * operator's `headers` and `organization`. Present only when `acceptsUserKeys`.
   */
  clientForKey?: (apiKey: string) => Provider;
  /** Per-user limits of calls on users' own keys (each user's key has its own window). */
  userKeyLimits?: KeyLimits;
}

/** One provider+model a route can send a call to. */
export interface RouteTarget {
  provider: string;
  model: string;
  /** For the `weighted` strategy; default 1. */
  weight: number;
  /** Fallback tier: all of tier 0 is tried before tier 1 ("then a lower-tier model"). Default 0. */
  tier: number;
}

/** A named group of targets with a strategy: what a job gets when it names the route as its model. */
export interface RouteSpec {
  name: string;
  strategy: StrategyName;
  /** In configuration order; the `priority` strategy keeps this order within a tier. */
  targets: RouteTarget[];
}

/** Retries, timeouts and deadlines of one routed call. */
export interface RetryPolicy {
  /** Provider calls per routed request, across all targets and keys. */
  maxCalls: number;
  /** Consecutive retryable failures on one target before moving on to the next. */
  perTargetAttempts: number;
  /** Backoff: full jitter in [0, min(maxDelayMs, baseDelayMs × 2^n)]. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not slept through in the worker: the job is delayed in BullMQ instead. */
  maxInlineWaitMs: number;
  /** Timeout of one provider call. */
  callTimeoutMs: number;
  /** Overall deadline of one routed request (all calls, waits included). */
  deadlineMs: number;
}

/** The circuit breaker per provider+model. */
export interface BreakerPolicy {
  /** Failures within `windowMs` that open the circuit. */
  failureThreshold: number;
  windowMs: number;
  /** How long the circuit stays open before half-opening. */
  openMs: number;
  /** Concurrent probe calls allowed while half-open. */
  halfOpenProbes: number;
  /**
   * How long a key that failed authentication or ran out of credit stays out of
   * rotation before one call probes it again: a success puts it back, a key
   * failure takes it out for this long again. An operator can reset it at any time.
   */
  keyRetryMs: number;
}

/**
 * What planning needs of a router configuration: providers with their models, routes,
 * the default route and prices. A {@link RouterConfig} is one (the worker's); so is
 * `routingFromCatalog` of the secret-free catalog the workers publish (the API's).
 */
export interface Routing {
  providers: ReadonlyMap<
    string,
    { name: string; defaultModel?: string | undefined; models: ReadonlyMap<string, ModelSpec> }
  >;
  routes: ReadonlyMap<string, RouteSpec>;
  defaultRoute: string;
  prices: Pick<PriceCatalog, "find" | "costMicroUsd">;
}

/** The validated, built configuration the router runs on. Immutable; a reload builds a new one. */
export interface RouterConfig {
  /** A hash of the source file (or environment), shown by the admin API. */
  version: string;
  /** The price version recorded on every job's cost. */
  priceVersion: string;
  /** In configuration order. */
  providers: Map<string, ProviderDeployment>;
  routes: Map<string, RouteSpec>;
  /** The route used by a job that names neither provider nor model. */
  defaultRoute: string;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
  prices: PriceCatalog;
}

/** The state of a circuit. */
export type CircuitState = "closed" | "open" | "half-open";

/** A key's standing, as seen by rotation. */
export type KeyState = "ok" | "cooling" | "exhausted";

/** What the router asks of the shared state before a call. */
export interface AcquireRequest {
  provider: string;
  model: string;
  /** Candidate keys of the provider; the state picks one (priority, headroom, least used; skipping cooling/exhausted). */
  keys: Array<{ id: string; priority: number; limits: KeyLimits }>;
  /** Estimated tokens reserved against TPM (input estimate + max output). */
  tokens: number;
  /** Unique per call; identifies the in-flight slot and the probe slot. */
  callId: string;
  /** After this many ms a never-released slot (a dead worker) stops counting as in flight. */
  leaseMs: number;
}

/** The answer to {@link AcquireRequest}. */
export type AcquireResult =
  | { ok: true; keyId: string /** True when this call is a half-open probe. */; probe: boolean }
  | {
      ok: false;
      reason: "circuit_open" | "rate_limited" | "no_key";
      /** When trying again may succeed (rate window frees up, circuit half-opens, key cooldown ends); absent for `no_key` without a cooldown end. */
      retryAfterMs?: number;
    };

/** What the router reports after a call. */
export interface ReleaseRequest {
  provider: string;
  model: string;
  keyId: string;
  callId: string;
  probe: boolean;
  latencyMs: number;
  /** Tokens reserved at acquire, and actually used (0 on failure); TPM is corrected by the difference. */
  reservedTokens: number;
  usedTokens: number;
  /** Absent on success. */
  error?: { code: string; message: string };
  /** Whether the failure counts against the circuit (5xx, timeouts, connection errors). */
  countsAsFailure: boolean;
  /**
   * Take the key out of rotation: `cooldown` for `cooldownMs` (rate limited),
   * `exhausted` (credit, auth) until the breaker's `keyRetryMs` passes and a probe
   * succeeds, or an operator resets it.
   */
  keyAction?: { kind: "cooldown"; cooldownMs: number } | { kind: "exhausted"; reason: string };
}

/** Live figures of one provider+model, shared by all worker processes. */
export interface TargetStats {
  provider: string;
  model: string;
  circuit: CircuitState;
  /** When an open circuit half-opens (epoch ms). */
  circuitOpenUntil?: number;
  inFlight: number;
  /** Exponentially weighted moving average of successful call latency; undefined before the first. */
  ewmaLatencyMs?: number;
  p50LatencyMs?: number;
  p95LatencyMs?: number;
  /** Calls and failures over the recent sample window. */
  calls: number;
  errors: number;
  lastError?: { code: string; message: string; at: string };
}

/** A key's figures for operators. */
export interface KeyStats {
  provider: string;
  keyId: string;
  state: KeyState;
  /**
   * Until when a cooling key is out of rotation, or when the next call may probe
   * an exhausted one (epoch ms; in the past once the probe is due).
   */
  until?: number;
  reason?: string;
  requestsLastMinute: number;
  tokensLastMinute: number;
  requestsToday: number;
}

/**
 * Router state shared by every worker process through Redis: circuits, key
 * limits and cooldowns, in-flight counts and latency figures. Each method is one
 * atomic step (a Lua script), so two processes never both take the last slot.
 */
export interface RouterState {
  acquire(request: AcquireRequest): Promise<AcquireResult>;
  release(request: ReleaseRequest): Promise<void>;
  /** Current figures for targets, for strategies (latency, least-busy) and the admin API. */
  targetStats(targets: Array<{ provider: string; model: string }>): Promise<TargetStats[]>;
  keyStats(keys: Array<{ provider: string; keyId: string; limits: KeyLimits }>): Promise<KeyStats[]>;
  /** Puts an exhausted or cooling key back into rotation (operator action). */
  resetKey(provider: string, keyId: string): Promise<void>;
}
