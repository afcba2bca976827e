import { randomUUID } from "node:crypto";
import { type ErrorCode, GenqError } from "@genq/core";
import { estimateTokens } from "../estimate-tokens.ts";
import type {
  ImageEditRequest,
  ImageGenerationRequest,
  ImageGenerationResult,
  ImageVariationRequest,
  Provider,
  TextGenerationRequest,
  TextGenerationResult,
} from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { candidates, worstCaseCostMicroUsd } from "./job-plan.ts";
import { type RoutePlan, type RouteSelection, resolveTargets } from "./resolve-targets.ts";
import {
  orderTier,
  STRATEGIES_NEEDING_STATS,
  type StrategyContext,
  targetKey,
  WeightedRoundRobin,
} from "./strategies.ts";
import type {
  AcquireResult,
  ReleaseRequest,
  RouterConfig,
  RouterState,
  RouteTarget,
  TargetStats,
} from "./types.ts";

/** One provider call (or a target skipped without a call), as recorded on the job. */
export interface RoutedCall {
  /** 1, 2, ... in the order the router made them. */
  seq: number;
  provider: string;
  model: string;
  keyId?: string;
  startedAt: Date;
  latencyMs: number;
  /** `skipped`: the target was not called (circuit open, rate limited, no usable key). */
  outcome: "ok" | "error" | "skipped";
  errorCode?: string;
  errorMessage?: string;
  inputTokens?: number;
  outputTokens?: number;
}

/** A routed call's answer, with where it ran, what it cost and every call made for it. */
export interface Routed<T> {
  output: T;
  provider: string;
  model: string;
  keyId: string;
  costMicroUsd: number;
  priceVersion: string;
  calls: RoutedCall[];
}

/** A routed call that failed for good (for this attempt), with every call made. */
export class RouteFailedError extends GenqError {
  override readonly name = "RouteFailedError";
  readonly calls: RoutedCall[];
  /** The last provider's Retry-After, for the queue's backoff before the next attempt. */
  readonly retryAfterMs: number | undefined;
  constructor(cause: GenqError, calls: RoutedCall[]) {
    super(cause.code, cause.message, { retryable: cause.retryable, details: cause.details, cause });
    this.calls = calls;
    this.retryAfterMs = cause instanceof ProviderError ? cause.retryAfterMs : undefined;
  }
}

/**
 * Every target is rate limited, out of usable keys or behind an open circuit for
 * longer than the worker should wait: run the job again after `delayMs`, without
 * counting this as a failed attempt (nothing is wrong with the job).
 */
export class RouteDelayedError extends GenqError {
  override readonly name = "RouteDelayedError";
  readonly delayMs: number;
  readonly calls: RoutedCall[];
  constructor(delayMs: number, calls: RoutedCall[]) {
    super("rate_limited", `every candidate is busy or limited; retrying in ${delayMs} ms`, {
      retryable: true,
      details: { delayMs },
    });
    this.delayMs = delayMs;
    this.calls = calls;
  }
}

/**
 * A stream that failed after it delivered output. Retryable as a job (a new attempt
 * streams again from the start), but not within the routed call.
 */
export class StreamInterruptedError extends GenqError {
  override readonly name = "StreamInterruptedError";
  constructor(cause: unknown) {
    super(
      GenqError.is(cause) ? cause.code : "provider_unavailable",
      `the stream broke after output began: ${cause instanceof Error ? cause.message : String(cause)}`,
      { retryable: true, cause },
    );
  }
}

/** Options for {@link ProviderRouter}. */
export interface ProviderRouterOptions {
  /** The current configuration; read once per routed call, so a reload never splits one. */
  config: () => RouterConfig;
  state: RouterState;
  /** Default: a timer that rejects when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  /** For backoff jitter. Default `Math.random`. */
  random?: () => number;
  logger?: { debug(object: object, message: string): void; warn(object: object, message: string): void };
}

/** Per-call options of {@link ProviderRouter}'s generate and stream methods. */
export interface RouteCallOptions {
  signal?: AbortSignal;
  /**
   * The caller's own key for a provider (BYO keys), or undefined to use the
   * system's keys. Asked only for providers that accept user keys
   * (`acceptsUserKeys`); elsewhere the system's keys are used whatever it answers.
   * A target whose provider gets a client here is called through it and recorded
   * with key id {@link BYO_KEY_ID}: no system key is acquired, but the call still
   * passes the shared state like any other: the circuit breaker gates it and learns
   * from it, it counts in flight, and it is held to the provider's `userKeyLimits`
   * in a window of the owner's own. The call is recorded and priced like any other.
   */
  clientFor?: (provider: string) => UserKeyClient | undefined;
}

/** A user's own key for one provider, as {@link RouteCallOptions.clientFor} gives it. */
export interface UserKeyClient {
  /** The adapter on the user's key. */
  client: Provider;
  /** Whose key it is (the user id): each owner's calls have their own rate window. */
  ownerId: string;
}

/** The `keyId` of calls made through a client from {@link RouteCallOptions.clientFor}. */
export const BYO_KEY_ID = "byo";

/** The id under which the shared state limits one owner's own key of a provider. */
export function userKeyStateId(ownerId: string): string {
  return `${BYO_KEY_ID}-user-${ownerId}`;
}

/** How one call is made on a chosen target, and what it consumed. */
interface CallSpec<T> {
  invoke(client: Provider, model: string, signal: AbortSignal): Promise<T>;
  usage(output: T): {
    inputTokens: number;
    outputTokens: number;
    cachedInputTokens?: number;
    images?: number;
  };
  /** Tokens reserved against TPM before the call. */
  reserveTokens: number;
  estimate: StrategyContext["estimate"];
  /** When the output carries the model that answered (aliases resolved). */
  answeredModel?(output: T): string;
}

/** Output tokens reserved when a request sets no `maxTokens` and the model no `maxOutputTokens`. */
const DEFAULT_OUTPUT_RESERVATION = 1_024;

/** Inline waiting rounds stop (and the job is delayed) once this many calls and skips are recorded. */
const MAX_RECORDED_CALLS = 100;

/** Codes that end the routed call at once: the request itself is at fault, another target will not help. */
const FATAL_CODES: ReadonlySet<ErrorCode> = new Set([
  "invalid_request",
  "content_filtered",
  "context_length_exceeded",
  "quota_exceeded",
  "canceled",
]);

/** Codes that take the key out of rotation and move on to the next key without waiting. */
const KEY_CODES: ReadonlySet<ErrorCode> = new Set(["credit_exhausted", "auth_failed"]);

/**
 * The provider router: per request it resolves the candidates (explicit choice,
 * route or default), orders each tier by strategy, and calls them through keys
 * chosen by the shared state (circuit closed, key with headroom). Retryable
 * failures back off with full jitter (or the provider's Retry-After) and then
 * fall back along the chain; every call is recorded for the job.
 */
export class ProviderRouter {
  readonly #options: ProviderRouterOptions;
  readonly #roundRobin = new WeightedRoundRobin();
  #roundRobinVersion: string | undefined;

  constructor(options: ProviderRouterOptions) {
    this.#options = options;
  }

  /** The configuration calls are routed with now. */
  config(): RouterConfig {
    return this.#options.config();
  }

  /**
   * The most a call could cost on any target it may be routed to (for budget
   * reservations): prices of every candidate applied to the worst-case size.
   * 0 when the selection cannot be routed (the call itself then fails with the reason).
   */
  estimateMaxCostMicroUsd(
    selection: Omit<RouteSelection, "capability">,
    estimate: StrategyContext["estimate"],
  ): number {
    const config = this.#options.config();
    const capability = estimate.images > 0 ? "image" : "text";
    return worstCaseCostMicroUsd(config, candidates(config, selection, capability), estimate);
  }

  async generateText(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<TextGenerationRequest, "model" | "signal">,
    options: RouteCallOptions = {},
  ): Promise<Routed<TextGenerationResult>> {
    return this.#routeText(selection, request, options, (client, model, signal) =>
      client.generateText({ ...request, model, signal }),
    );
  }

  /**
   * Streams a text generation: `onDelta` receives the text as it arrives. Retries and
   * fallback apply only until the first delta; a stream that breaks after output
   * began fails the routed call (another target would repeat text already delivered).
   */
  async streamText(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<TextGenerationRequest, "model" | "signal">,
    options: RouteCallOptions & { onDelta: (delta: string) => void },
  ): Promise<Routed<TextGenerationResult>> {
    return this.#routeText(selection, request, options, async (client, model, signal) => {
      let text = "";
      let started = false;
      try {
        for await (const part of client.streamText({ ...request, model, signal })) {
          if (part.type === "text-delta") {
            started = true;
            text += part.delta;
            options.onDelta(part.delta);
          } else {
            return {
              text,
              finishReason: part.finishReason,
              usage: part.usage,
              model: part.model,
              ...(part.providerRequestId === undefined ? {} : { providerRequestId: part.providerRequestId }),
            };
          }
        }
      } catch (error) {
        if (started) throw new StreamInterruptedError(error);
        throw error;
      }
      throw new StreamInterruptedError(new Error(`${client.name}: the stream ended without a finish`));
    });
  }

  /** Routes a text call: reserves the prompt's estimate plus the most output the request allows. */
  #routeText(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<TextGenerationRequest, "model" | "signal">,
    options: RouteCallOptions,
    invoke: CallSpec<TextGenerationResult>["invoke"],
  ): Promise<Routed<TextGenerationResult>> {
    const config = this.#options.config();
    const inputTokens = request.messages.reduce((sum, message) => sum + estimateTokens(message.content), 0);
    const plan = resolveTargets(config, { ...selection, capability: "text" });
    const outputTokens = request.maxTokens ?? maxOutputOf(config, plan) ?? DEFAULT_OUTPUT_RESERVATION;
    return this.#route(config, plan, options, {
      invoke,
      usage: (output) => output.usage,
      answeredModel: (output) => output.model,
      reserveTokens: inputTokens + outputTokens,
      estimate: { inputTokens, outputTokens, images: 0 },
    });
  }

  async generateImage(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<ImageGenerationRequest, "model" | "signal">,
    options: RouteCallOptions = {},
  ): Promise<Routed<ImageGenerationResult>> {
    return this.#routeImage(
      selection,
      options,
      request.prompt,
      request,
      "generate images",
      (client, model, signal) => client.generateImage?.({ ...request, model, signal }),
    );
  }

  /**
   * Edits an uploaded image. A target whose provider cannot edit fails the call with
   * `invalid_request` at once (the request, not the target, is at fault).
   */
  async editImage(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<ImageEditRequest, "model" | "signal">,
    options: RouteCallOptions = {},
  ): Promise<Routed<ImageGenerationResult>> {
    return this.#routeImage(
      selection,
      options,
      request.prompt,
      request,
      "edit images",
      (client, model, signal) => client.editImage?.({ ...request, model, signal }),
    );
  }

  /** Makes variations of an uploaded image; like {@link editImage} for providers without them. */
  async createImageVariation(
    selection: Omit<RouteSelection, "capability">,
    request: Omit<ImageVariationRequest, "model" | "signal">,
    options: RouteCallOptions = {},
  ): Promise<Routed<ImageGenerationResult>> {
    return this.#routeImage(
      selection,
      options,
      "",
      request,
      "make variations of images",
      (client, model, signal) => client.createImageVariation?.({ ...request, model, signal }),
    );
  }

  /**
   * Routes an image call. `invoke` answers undefined when the client lacks the
   * operation: that fails the call at once with `invalid_request` ("X cannot ..."),
   * since the request, not the target, is at fault.
   */
  #routeImage(
    selection: Omit<RouteSelection, "capability">,
    options: RouteCallOptions,
    prompt: string,
    request: { n: number; size?: string; quality?: string },
    operation: string,
    invoke: (
      client: Provider,
      model: string,
      signal: AbortSignal,
    ) => Promise<ImageGenerationResult> | undefined,
  ): Promise<Routed<ImageGenerationResult>> {
    const config = this.#options.config();
    const plan = resolveTargets(config, { ...selection, capability: "image" });
    return this.#route(
      config,
      plan,
      options,
      imageCallSpec(prompt, request, async (client, model, signal) => {
        const call = invoke(client, model, signal);
        if (call === undefined) {
          throw new ProviderError("invalid_request", `${client.name} cannot ${operation}`, {
            provider: client.name,
          });
        }
        return call;
      }),
    );
  }

  async #route<T>(
    config: RouterConfig,
    plan: RoutePlan,
    callOptions: RouteCallOptions,
    spec: CallSpec<T>,
  ): Promise<Routed<T>> {
    const { signal, clientFor } = callOptions;
    const { retry } = config;
    const deadline = Date.now() + retry.deadlineMs;
    const calls: RoutedCall[] = [];
    const ordered = await this.#order(config, plan, spec);
    let callsMade = 0;
    let lastError: GenqError | undefined;

    // A round walks the ordered targets once. Another round only follows when every
    // target was skipped or rate limited and the soonest opening is close enough.
    for (;;) {
      let soonestOpeningMs: number | undefined;
      const noteOpening = (ms: number | undefined) => {
        if (ms !== undefined) soonestOpeningMs = Math.min(soonestOpeningMs ?? ms, ms);
      };

      for (const target of ordered) {
        const deployment = config.providers.get(target.provider);
        if (deployment === undefined) continue;
        const userKey = deployment.acceptsUserKeys ? clientFor?.(target.provider) : undefined;
        const byoClient = userKey?.client;
        const candidates =
          userKey === undefined
            ? deployment.keys.map((key) => ({ id: key.id, priority: key.priority, limits: key.limits }))
            : [{ id: userKeyStateId(userKey.ownerId), priority: 1, limits: deployment.userKeyLimits ?? {} }];
        let failuresHere = 0;
        while (callsMade < retry.maxCalls) {
          throwIfAborted(signal, calls);
          const remainingMs = deadline - Date.now();
          if (remainingMs <= 0) throw this.#deadlineExceeded(retry.deadlineMs, calls, lastError);
          const callId = randomUUID();
          const startedAt = new Date();
          // A user's key passes the same gate as the system's: circuit, in-flight, rate limits.
          const acquired: AcquireResult = await this.#options.state.acquire({
            provider: target.provider,
            model: target.model,
            keys: candidates,
            tokens: spec.reserveTokens,
            callId,
            leaseMs: Math.min(retry.callTimeoutMs, remainingMs) + 5_000,
          });
          if (!acquired.ok) {
            calls.push({
              seq: calls.length + 1,
              provider: target.provider,
              model: target.model,
              startedAt,
              latencyMs: 0,
              outcome: "skipped",
              errorCode: acquired.reason === "circuit_open" ? "provider_unavailable" : "rate_limited",
              errorMessage: SKIP_MESSAGES[acquired.reason],
            });
            noteOpening(acquired.retryAfterMs);
            if (
              acquired.reason === "no_key" &&
              acquired.retryAfterMs === undefined &&
              byoClient === undefined
            ) {
              // Every key is out of credit or failed authentication: only an operator can fix that.
              lastError ??= new GenqError(
                "credit_exhausted",
                `every key of ${target.provider} is out of credit or failed authentication; each is tried again after the key retry time, or an operator can reset it (POST /v1/admin/providers/${target.provider}/keys/:keyId/reset)`,
                { details: { provider: target.provider } },
              );
            }
            break;
          }
          const key =
            byoClient !== undefined
              ? { id: BYO_KEY_ID, client: byoClient }
              : deployment.keys.find((candidate) => candidate.id === acquired.keyId);
          if (key === undefined)
            throw new Error(`state chose unknown key ${acquired.keyId} of ${target.provider}`);
          callsMade += 1;

          const timeout = AbortSignal.timeout(Math.min(retry.callTimeoutMs, remainingMs));
          const callSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
          const release = (
            fields: Partial<ReleaseRequest> & Pick<ReleaseRequest, "latencyMs" | "countsAsFailure">,
          ) =>
            this.#options.state.release({
              provider: target.provider,
              model: target.model,
              keyId: acquired.keyId,
              callId,
              probe: acquired.probe,
              reservedTokens: spec.reserveTokens,
              usedTokens: 0,
              ...fields,
            });
          const started = performance.now();
          try {
            const output = await spec.invoke(key.client, target.model, callSignal);
            const latencyMs = Math.round(performance.now() - started);
            const usage = spec.usage(output);
            // Not awaited: nothing in it changes this call's outcome, and commands on one
            // connection run in order, so this process's next acquire still sees it.
            release({
              latencyMs,
              usedTokens: usage.inputTokens + usage.outputTokens,
              countsAsFailure: false,
            }).catch((error: unknown) =>
              this.#options.logger?.warn(
                { err: error, provider: target.provider },
                "could not record a call's release",
              ),
            );
            const model = spec.answeredModel?.(output) ?? target.model;
            calls.push({
              seq: calls.length + 1,
              provider: target.provider,
              model,
              keyId: key.id,
              startedAt,
              latencyMs,
              outcome: "ok",
              inputTokens: usage.inputTokens,
              outputTokens: usage.outputTokens,
            });
            const cost = config.prices.costMicroUsd({
              provider: target.provider,
              model,
              usage,
              ...(spec.estimate.image === undefined ? {} : { image: spec.estimate.image }),
            });
            return {
              output,
              provider: target.provider,
              model,
              keyId: key.id,
              costMicroUsd: cost.costMicroUsd,
              // A price stored in the database carries its own version (decision 0023).
              priceVersion: config.prices.find(target.provider, model)?.version ?? config.priceVersion,
              calls,
            };
          } catch (caught) {
            const latencyMs = Math.round(performance.now() - started);
            if (signal?.aborted) {
              // Not a success and not the target's fault: neither closes nor opens the circuit.
              await release({
                latencyMs,
                countsAsFailure: false,
                error: { code: "canceled", message: "the call was canceled" },
              }).catch(() => {});
              throw new RouteFailedError(
                new GenqError("canceled", "the call was canceled", { cause: caught }),
                calls,
              );
            }
            const error = toGenqError(caught, timeout.aborted, target.provider, retry.callTimeoutMs);
            const retryAfterMs = error instanceof ProviderError ? error.retryAfterMs : undefined;
            await release({
              latencyMs,
              countsAsFailure: error.code === "provider_unavailable" || error.code === "timeout",
              error: { code: error.code, message: error.message },
              // A refused user key is the user's to fix: the job falls back, nothing is taken out.
              ...(byoClient !== undefined && KEY_CODES.has(error.code)
                ? {}
                : keyActionFor(error.code, retryAfterMs, retry.baseDelayMs, error.message)),
            });
            calls.push({
              seq: calls.length + 1,
              provider: target.provider,
              model: target.model,
              keyId: key.id,
              startedAt,
              latencyMs,
              outcome: "error",
              errorCode: error.code,
              errorMessage: error.message,
            });
            lastError = error;
            this.#options.logger?.debug(
              { provider: target.provider, model: target.model, keyId: key.id, code: error.code },
              "provider call failed",
            );
            if (FATAL_CODES.has(error.code) || caught instanceof StreamInterruptedError) {
              throw new RouteFailedError(error, calls);
            }
            // The caller's own key is refused: no other key of it to try here; fall back along the chain.
            if (byoClient !== undefined && KEY_CODES.has(error.code)) break;
            if (KEY_CODES.has(error.code)) continue; // the next acquire picks another key, or skips the target
            if (error.code === "rate_limited") {
              // The key cools down for Retry-After; another key or target may take the call now.
              noteOpening(retryAfterMs ?? retry.baseDelayMs);
              continue;
            }
            failuresHere += 1;
            if (failuresHere >= retry.perTargetAttempts) break;
            // Asked to wait longer than a worker should hold a job: try elsewhere, or leave it to the queue.
            if (retryAfterMs !== undefined && retryAfterMs > retry.maxInlineWaitMs) break;
            const backoffMs = Math.max(
              this.#backoff(retry.baseDelayMs, retry.maxDelayMs, failuresHere),
              retryAfterMs ?? 0,
            );
            if (Date.now() + backoffMs >= deadline) break;
            await this.#sleep(backoffMs, signal, calls);
          }
        }
        if (callsMade >= retry.maxCalls) break;
      }

      const exhaustedCalls = callsMade >= retry.maxCalls;
      if (soonestOpeningMs === undefined || exhaustedCalls) {
        throw new RouteFailedError(
          lastError ??
            new GenqError("provider_unavailable", "no provider could take the call", { retryable: true }),
          calls,
        );
      }
      // Everything is limited or open for now. Wait here if it is short, else hand the job back to the queue.
      const waitMs = Math.max(1, soonestOpeningMs);
      if (waitMs > retry.maxInlineWaitMs || Date.now() + waitMs >= deadline) {
        throw new RouteDelayedError(waitMs, calls);
      }
      await this.#sleep(waitMs, signal, calls);
      if (calls.length > MAX_RECORDED_CALLS) {
        // A state that keeps answering "soon" must not grow the call log without bound.
        throw new RouteDelayedError(waitMs, calls);
      }
    }
  }

  async #order<T>(config: RouterConfig, plan: RoutePlan, spec: CallSpec<T>): Promise<RouteTarget[]> {
    if (this.#roundRobinVersion !== config.version) {
      this.#roundRobin.reset();
      this.#roundRobinVersion = config.version;
    }
    let stats: Map<string, TargetStats> | undefined;
    if (STRATEGIES_NEEDING_STATS.has(plan.strategy)) {
      const all = await this.#options.state.targetStats(plan.tiers.flat());
      stats = new Map(all.map((entry) => [targetKey(entry), entry]));
    }
    return plan.tiers.flatMap((tier, index) =>
      orderTier(
        plan.strategy,
        tier,
        { prices: config.prices, stats, roundRobin: this.#roundRobin, estimate: spec.estimate },
        `${plan.name}#${index}`,
      ),
    );
  }

  /** Full jitter: uniform in [0, min(max, base × 2^(n-1))]. */
  #backoff(baseMs: number, maxMs: number, failures: number): number {
    const ceiling = Math.min(maxMs, baseMs * 2 ** (failures - 1));
    return Math.round((this.#options.random ?? Math.random)() * ceiling);
  }

  async #sleep(ms: number, signal: AbortSignal | undefined, calls: RoutedCall[]): Promise<void> {
    try {
      await (this.#options.sleep ?? abortableSleep)(ms, signal);
    } catch (error) {
      throw new RouteFailedError(new GenqError("canceled", "the call was canceled", { cause: error }), calls);
    }
  }

  #deadlineExceeded(
    deadlineMs: number,
    calls: RoutedCall[],
    lastError: GenqError | undefined,
  ): RouteFailedError {
    return new RouteFailedError(
      new GenqError(
        "timeout",
        `no provider answered within the ${deadlineMs} ms deadline${lastError ? ` (last error: ${lastError.message})` : ""}`,
        { retryable: true },
      ),
      calls,
    );
  }
}

const SKIP_MESSAGES = {
  circuit_open: "circuit open: the target failed repeatedly and is resting",
  rate_limited: "every key of the provider is at its rate limit",
  no_key: "no usable key: every key is cooling down or out of credit",
} as const;

/** The call spec of an image edit or variation: priced and reserved like a generation. */
function imageCallSpec(
  prompt: string,
  request: { n: number; size?: string; quality?: string },
  invoke: CallSpec<ImageGenerationResult>["invoke"],
): CallSpec<ImageGenerationResult> {
  return {
    invoke,
    usage: (output) => ({
      inputTokens: output.usage.inputTokens ?? 0,
      outputTokens: output.usage.outputTokens ?? 0,
      images: output.usage.images,
    }),
    answeredModel: (output) => output.model,
    reserveTokens: estimateTokens(prompt),
    estimate: {
      inputTokens: estimateTokens(prompt),
      outputTokens: 0,
      images: request.n,
      image: {
        ...(request.size === undefined ? {} : { size: request.size }),
        ...(request.quality === undefined ? {} : { quality: request.quality }),
      },
    },
  };
}

function maxOutputOf(config: RouterConfig, plan: RoutePlan): number | undefined {
  let max: number | undefined;
  for (const candidate of plan.tiers.flat()) {
    const spec = config.providers.get(candidate.provider)?.models.get(candidate.model);
    if (spec?.maxOutputTokens !== undefined) max = Math.max(max ?? 0, spec.maxOutputTokens);
  }
  return max;
}

function keyActionFor(
  code: ErrorCode,
  retryAfterMs: number | undefined,
  baseDelayMs: number,
  message: string,
): Pick<ReleaseRequest, "keyAction"> {
  if (code === "credit_exhausted" || code === "auth_failed") {
    return { keyAction: { kind: "exhausted", reason: `${code}: ${message}`.slice(0, 300) } };
  }
  if (code === "rate_limited") {
    return { keyAction: { kind: "cooldown", cooldownMs: Math.max(1, retryAfterMs ?? baseDelayMs) } };
  }
  return {};
}

function toGenqError(error: unknown, timedOut: boolean, provider: string, timeoutMs: number): GenqError {
  if (timedOut) {
    return new ProviderError("timeout", `${provider}: no answer within ${timeoutMs} ms`, {
      provider,
      cause: error,
    });
  }
  if (GenqError.is(error)) return error;
  return new GenqError("internal_error", `${provider}: the call failed unexpectedly`, {
    retryable: true,
    cause: error,
  });
}

function throwIfAborted(signal: AbortSignal | undefined, calls: RoutedCall[]): void {
  if (signal?.aborted) {
    throw new RouteFailedError(
      new GenqError("canceled", "the call was canceled", { cause: signal.reason }),
      calls,
    );
  }
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
