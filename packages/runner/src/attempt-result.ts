import { GenqError, isErrorCode, toPublicFailure } from "@genq/core";
import type { ClaimOutcome, JobCompletion, JobFailure, ProviderCallRecord } from "@genq/db";
import { RouteDelayedError, RouteFailedError } from "@genq/providers";

/** Provider calls of an attempt, recorded with whichever transition ends it. */
type Calls = readonly ProviderCallRecord[];

/**
 * What one delivery of a job comes to, decided before anything is written; the
 * processor's settle step applies it (a lifecycle transition, then BullMQ's action).
 *
 * - `completed`: the attempt produced a result → complete the job, return to BullMQ.
 * - `canceled`: a cancel was requested (or the owner is disabled) → cancel the job,
 *   return. When the cancel is refused (none was requested after all), `otherwise` applies.
 * - `skipped`: nothing to do (finished meanwhile, or another delivery owns the job) → return.
 * - `delayed`: wait without spending an attempt → `moveToDelayed` + `DelayedError`
 *   (after a postponement for `providers`; parked in the tenant gate for `tenant`).
 * - `retry`: the attempt failed and another may succeed → back to queued, throw `error`
 *   (BullMQ retries after its backoff, which reads `error.retryAfterMs`).
 * - `failed`: no attempt will succeed → fail the job, throw `error` (an
 *   `UnrecoverableError` unless the failure is retryable and the attempts are spent).
 */
export type AttemptResult =
  | { kind: "completed"; completion: JobCompletion }
  | {
      kind: "canceled";
      /** `queued`: before it ran; `running`: it interrupted the attempt; `settling`: a transition was refused. */
      when: "queued" | "running" | "settling" | "user_disabled";
      calls: Calls;
      otherwise?: AttemptResult | undefined;
    }
  | { kind: "skipped"; reason: "finished" | "superseded" }
  | { kind: "delayed"; wait: "providers"; delayMs: number; since: Date; calls: Calls }
  | { kind: "delayed"; wait: "database"; delayMs: number }
  | { kind: "delayed"; wait: "tenant"; userId: string; running: number; cap: number }
  | { kind: "retry"; failure: JobFailure; error: GenqError; calls: Calls }
  | {
      kind: "failed";
      failure: JobFailure;
      error: GenqError;
      calls: Calls;
      /** Set when the attempt is first recorded as a postponement since then (no provider ran). */
      postponedSince?: Date | undefined;
    };

/** Everything {@link decideFailedAttempt} weighs; no I/O is needed to gather it. */
export interface FailedAttemptFacts {
  /** What the attempt threw. */
  error: unknown;
  /** The attempt's deadline passed (its signal aborted for time). */
  timedOut: boolean;
  /** The attempt's deadline, for the `timeout` message. */
  timeoutMs: number;
  /** A cancel of the job reached this worker during the attempt. */
  cancelRequested: boolean;
  /** Deliveries BullMQ made before this one (`job.attemptsMade`). */
  attemptsMade: number;
  /** Deliveries BullMQ allows (`job.opts.attempts`). */
  attemptsAllowed: number;
  /** The job can be moved to BullMQ's delayed set (the delivery holds a lock token). */
  canDelay: boolean;
  /** The job's first postponement, if it was postponed before. */
  postponedSince: Date | null;
  /** How long a job may wait for its providers from its first postponement. */
  postponeDeadlineMs: number;
  /** Now, in epoch ms. */
  now: number;
}

/**
 * The result of an attempt that threw. Pure: the same facts always give the same result.
 *
 * A cancel wins (with the failure as `otherwise`, for when no cancel was recorded). A
 * delayed route that called a provider and saw it fail spent a real attempt; one that
 * called none waits, up to the postponement deadline. Anything else fails the job on
 * its last attempt or when not retryable, and retries it otherwise.
 */
export function decideFailedAttempt(facts: FailedAttemptFacts): AttemptResult {
  const error =
    facts.error instanceof RouteDelayedError ? (asRealFailure(facts.error) ?? facts.error) : facts.error;
  const calls = error instanceof RouteFailedError || error instanceof RouteDelayedError ? error.calls : [];
  const result = decideFailure(facts, error, calls);
  return facts.cancelRequested ? { kind: "canceled", when: "running", calls, otherwise: result } : result;
}

function decideFailure(facts: FailedAttemptFacts, error: unknown, calls: Calls): AttemptResult {
  if (error instanceof RouteDelayedError && facts.canDelay) {
    // Every candidate is limited for a while and none was called: wait, spending no attempt.
    const since = facts.postponedSince ?? new Date(facts.now);
    if (facts.now - since.getTime() + error.delayMs <= facts.postponeDeadlineMs) {
      return { kind: "delayed", wait: "providers", delayMs: error.delayMs, since, calls };
    }
    const failure = new GenqError(
      "provider_unavailable",
      `no provider could take the job within ${Math.round(facts.postponeDeadlineMs / 1_000)} s ` +
        "(every candidate rate limited or unavailable); giving up",
    );
    return { kind: "failed", failure, error: failure, calls, postponedSince: since };
  }
  const failure = classify(error, facts.timedOut, facts.timeoutMs);
  // Users see the code and its generic message (job, batch results, webhooks, SSE all read
  // the row); the provider's text stays in the call log and the worker's log.
  const shown = toPublicFailure(failure);
  const lastAttempt = !failure.retryable || facts.attemptsMade + 1 >= facts.attemptsAllowed;
  return lastAttempt
    ? { kind: "failed", failure: shown, error: failure, calls }
    : { kind: "retry", failure: shown, error: failure, calls };
}

/**
 * What a delivery whose claim did not give it the job comes to: a job that was not
 * claimable is canceled if a cancel is pending (say a crashed worker's job), else
 * left alone; a disabled owner's job was canceled by the claim; a job whose owner
 * runs its cap is parked, when `canPark` (a tenant gate and the delivery's lock).
 */
export function unclaimedResult(
  claim: Exclude<ClaimOutcome, { outcome: "claimed" }>,
  canPark: boolean,
): AttemptResult {
  if (claim.outcome === "user_disabled") return { kind: "canceled", when: "user_disabled", calls: [] };
  if (claim.outcome === "tenant_busy" && canPark) {
    const { userId, running, cap } = claim;
    return { kind: "delayed", wait: "tenant", userId, running, cap };
  }
  return { kind: "canceled", when: "queued", calls: [], otherwise: { kind: "skipped", reason: "finished" } };
}

/**
 * What follows when the lifecycle refused the transition of `result`: the job was
 * canceled meanwhile, finished, or another delivery claimed it since. A refused
 * cancel falls back to what the attempt came to otherwise; anything else is
 * canceled if a cancel is pending, and left alone (skipped) if not.
 */
export function afterRefusal(result: AttemptResult): AttemptResult {
  if (result.kind === "canceled") return result.otherwise ?? { kind: "skipped", reason: "superseded" };
  return {
    kind: "canceled",
    when: "settling",
    calls: [],
    otherwise: { kind: "skipped", reason: "superseded" },
  };
}

/**
 * A delayed route whose run called a provider and saw it fail as unavailable or time
 * out (a half-open probe, the failure that opened the circuit) as a failed attempt, or
 * undefined when it saw no such failure. Such a run fails (and retries after the delay)
 * like any other, so a provider that keeps failing spends the job's attempts instead of
 * postponing the job forever.
 */
function asRealFailure(error: RouteDelayedError): RouteFailedError | undefined {
  // Only failures of the provider itself (those that count toward its circuit): a refused
  // key or a rate limit on one key says nothing about the job or the provider's health.
  const failed = error.calls.findLast(
    (call) =>
      call.outcome === "error" && (call.errorCode === "provider_unavailable" || call.errorCode === "timeout"),
  );
  if (failed === undefined) return undefined;
  const code = failed.errorCode !== undefined && isErrorCode(failed.errorCode) ? failed.errorCode : undefined;
  const failure = new GenqError(
    code ?? "provider_unavailable",
    failed.errorMessage ?? "the provider call failed",
    {
      retryable: true,
      cause: error,
    },
  );
  // The retry waits until a candidate may take calls again (the queue's backoff reads this).
  return Object.assign(new RouteFailedError(failure, error.calls), { retryAfterMs: error.delayMs });
}

/**
 * Any failure as a GenqError; unknown errors (bugs, lost connections) are retryable.
 * Their text stays in the logs: it can hold internals that users must not see.
 */
function classify(error: unknown, timedOut: boolean, timeoutMs: number): GenqError {
  if (timedOut) {
    return new GenqError("timeout", `the attempt did not finish within ${timeoutMs} ms`, { retryable: true });
  }
  if (GenqError.is(error)) return error;
  return new GenqError(
    "internal_error",
    "the worker hit an internal error running this job (see worker logs)",
    {
      retryable: true,
      cause: error,
    },
  );
}
