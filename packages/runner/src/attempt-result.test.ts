import { GenqError } from "@genq/core";
import { ProviderError, RouteDelayedError, type RoutedCall, RouteFailedError } from "@genq/providers";
import { describe, expect, it } from "vitest";
import {
  type AttemptResult,
  afterRefusal,
  decideFailedAttempt,
  type FailedAttemptFacts,
  unclaimedResult,
} from "./attempt-result.ts";

const NOW = Date.parse("2026-12-03T12:00:00Z");
const MINUTE = 60_000;
const DEADLINE = 30 * MINUTE;

function call(outcome: RoutedCall["outcome"], errorCode?: string): RoutedCall {
  return {
    seq: 1,
    provider: "mock",
    model: "m",
    startedAt: new Date(NOW - 1_000),
    latencyMs: outcome === "skipped" ? 0 : 900,
    outcome,
    ...(errorCode === undefined ? {} : { errorCode, errorMessage: `upstream said ${errorCode}` }),
  };
}

const providerCall = call("error", "provider_unavailable");
const skippedCall = call("skipped", "rate_limited");

/** A 503 from a provider after the router tried every candidate: retryable. */
const unavailable = () =>
  new RouteFailedError(
    new ProviderError("provider_unavailable", "upstream 503: secret internals", {
      provider: "mock",
      status: 503,
    }),
    [providerCall],
  );
/** An out-of-credit 402: not retryable. */
const outOfCredit = () =>
  new RouteFailedError(
    new ProviderError("credit_exhausted", "upstream 402", {
      provider: "mock",
      status: 402,
      retryable: false,
    }),
    [call("error", "credit_exhausted")],
  );
/** Every candidate limited, none called. */
const limited = (delayMs = 10_000) => new RouteDelayedError(delayMs, [skippedCall]);
/** Delayed, but a half-open probe called a provider and it failed: a real attempt. */
const limitedAfterFailure = (delayMs = 10_000) => new RouteDelayedError(delayMs, [providerCall, skippedCall]);

const base: FailedAttemptFacts = {
  error: undefined,
  timedOut: false,
  timeoutMs: 120_000,
  cancelRequested: false,
  attemptsMade: 0,
  attemptsAllowed: 3,
  canDelay: true,
  postponedSince: null,
  postponeDeadlineMs: DEADLINE,
  now: NOW,
};
const first = { attemptsMade: 0 };
const last = { attemptsMade: 2 };

/** What a row checks of a result: its kind and the data that decides the transition and BullMQ's action. */
function shape(result: AttemptResult): Record<string, unknown> {
  switch (result.kind) {
    case "retry":
    case "failed":
      return {
        kind: result.kind,
        code: result.failure.code,
        thrownRetryable: result.error.retryable,
        calls: result.calls.length,
        ...(result.kind === "failed" && result.postponedSince !== undefined
          ? { postponedSince: result.postponedSince.getTime() }
          : {}),
        ...("retryAfterMs" in result.error ? { retryAfterMs: result.error.retryAfterMs } : {}),
      };
    case "delayed":
      return result.wait === "providers"
        ? { kind: "delayed", wait: "providers", delayMs: result.delayMs, since: result.since.getTime() }
        : { kind: "delayed", wait: result.wait };
    case "canceled":
      return {
        kind: "canceled",
        when: result.when,
        calls: result.calls.length,
        ...(result.otherwise === undefined ? {} : { otherwise: shape(result.otherwise) }),
      };
    case "skipped":
      return { kind: "skipped", reason: result.reason };
    case "completed":
      return { kind: "completed" };
  }
}

describe("decideFailedAttempt", () => {
  const rows: Array<[string, Partial<FailedAttemptFacts>, Record<string, unknown>]> = [
    // Retryable provider errors: retry until the last attempt, then fail (thrown as is: BullMQ sees the attempts spent).
    [
      "retries a retryable provider error on the first attempt",
      { ...first, error: unavailable() },
      {
        kind: "retry",
        code: "provider_unavailable",
        thrownRetryable: true,
        calls: 1,
        retryAfterMs: undefined,
      },
    ],
    [
      "fails a retryable provider error on the last attempt",
      { ...last, error: unavailable() },
      {
        kind: "failed",
        code: "provider_unavailable",
        thrownRetryable: true,
        calls: 1,
        retryAfterMs: undefined,
      },
    ],
    [
      "fails on the only attempt a job has",
      { attemptsMade: 0, attemptsAllowed: 1, error: unavailable() },
      {
        kind: "failed",
        code: "provider_unavailable",
        thrownRetryable: true,
        calls: 1,
        retryAfterMs: undefined,
      },
    ],
    // Non-retryable: fail at once, whatever attempts are left (UnrecoverableError).
    [
      "fails a non-retryable provider error on the first attempt",
      { ...first, error: outOfCredit() },
      {
        kind: "failed",
        code: "credit_exhausted",
        thrownRetryable: false,
        calls: 1,
        retryAfterMs: undefined,
      },
    ],
    [
      "fails a stored input that no longer parses without retrying",
      { ...first, error: new GenqError("invalid_request", "stored input is invalid: x") },
      { kind: "failed", code: "invalid_request", thrownRetryable: false, calls: 0 },
    ],
    // Timeout: whatever the aborted call threw, it is a retryable `timeout`.
    [
      "retries an attempt that ran out of time",
      { ...first, timedOut: true, error: new DOMException("aborted", "AbortError") },
      { kind: "retry", code: "timeout", thrownRetryable: true, calls: 0 },
    ],
    [
      "fails an attempt that ran out of time on the last attempt",
      { ...last, timedOut: true, error: outOfCredit() },
      { kind: "failed", code: "timeout", thrownRetryable: true, calls: 1 },
    ],
    // Internal errors (bugs, lost connections): retryable, never shown as they are.
    [
      "retries an internal error",
      { ...first, error: new TypeError("cannot read properties of undefined") },
      { kind: "retry", code: "internal_error", thrownRetryable: true, calls: 0 },
    ],
    [
      "fails an internal error on the last attempt",
      { ...last, error: new Error("connection reset") },
      { kind: "failed", code: "internal_error", thrownRetryable: true, calls: 0 },
    ],
    // Every candidate limited and none called: wait without spending an attempt, up to the deadline.
    [
      "postpones a job whose candidates are all limited, from now",
      { ...first, error: limited(10_000) },
      { kind: "delayed", wait: "providers", delayMs: 10_000, since: NOW },
    ],
    [
      "postpones on the last attempt too: a postponement spends none",
      { ...last, error: limited(10_000) },
      { kind: "delayed", wait: "providers", delayMs: 10_000, since: NOW },
    ],
    [
      "keeps the first postponement's time when postponed again",
      { error: limited(10_000), postponedSince: new Date(NOW - 5 * MINUTE) },
      { kind: "delayed", wait: "providers", delayMs: 10_000, since: NOW - 5 * MINUTE },
    ],
    [
      "postpones when the wait ends exactly at the deadline",
      { error: limited(MINUTE), postponedSince: new Date(NOW - DEADLINE + MINUTE) },
      { kind: "delayed", wait: "providers", delayMs: MINUTE, since: NOW - DEADLINE + MINUTE },
    ],
    [
      "fails provider_unavailable when the wait would pass the deadline, counted as a postponement first",
      { error: limited(MINUTE), postponedSince: new Date(NOW - DEADLINE + MINUTE - 1) },
      {
        kind: "failed",
        code: "provider_unavailable",
        thrownRetryable: false,
        calls: 1,
        postponedSince: NOW - DEADLINE + MINUTE - 1,
      },
    ],
    [
      "fails a first postponement longer than the whole deadline",
      { error: limited(DEADLINE + 1) },
      { kind: "failed", code: "provider_unavailable", thrownRetryable: false, calls: 1, postponedSince: NOW },
    ],
    [
      "retries a limited route as rate_limited when the delivery cannot be delayed (no lock token)",
      { ...first, canDelay: false, error: limited() },
      { kind: "retry", code: "rate_limited", thrownRetryable: true, calls: 1 },
    ],
    [
      "fails a limited route that cannot be delayed on the last attempt",
      { ...last, canDelay: false, error: limited() },
      { kind: "failed", code: "rate_limited", thrownRetryable: true, calls: 1 },
    ],
    // Delayed, but a provider was called and failed: a real attempt, retried after the delay.
    [
      "retries a delayed route that saw a provider fail, after the route's delay",
      { ...first, error: limitedAfterFailure(7_000) },
      { kind: "retry", code: "provider_unavailable", thrownRetryable: true, calls: 2, retryAfterMs: 7_000 },
    ],
    [
      "fails a delayed route that saw a provider fail on the last attempt, past any deadline",
      { ...last, error: limitedAfterFailure(), postponedSince: new Date(NOW - 2 * DEADLINE) },
      { kind: "failed", code: "provider_unavailable", thrownRetryable: true, calls: 2, retryAfterMs: 10_000 },
    ],
    // A cancel wins; what the attempt came to otherwise is kept for when no cancel is recorded.
    [
      "cancels a job whose cancel interrupted a retryable failure",
      { ...first, cancelRequested: true, error: unavailable() },
      {
        kind: "canceled",
        when: "running",
        calls: 1,
        otherwise: { kind: "retry", code: "provider_unavailable", thrownRetryable: true, calls: 1 },
      },
    ],
    [
      "cancels a job whose cancel came with its last attempt's failure",
      { ...last, cancelRequested: true, error: new GenqError("canceled", "the call was canceled") },
      {
        kind: "canceled",
        when: "running",
        calls: 0,
        otherwise: { kind: "failed", code: "canceled", thrownRetryable: false, calls: 0 },
      },
    ],
    [
      "cancels a postponed job rather than delaying it",
      { cancelRequested: true, error: limited(10_000) },
      {
        kind: "canceled",
        when: "running",
        calls: 1,
        otherwise: { kind: "delayed", wait: "providers", delayMs: 10_000, since: NOW },
      },
    ],
    [
      "cancels rather than time out when both happened",
      { ...first, cancelRequested: true, timedOut: true, error: new Error("aborted") },
      {
        kind: "canceled",
        when: "running",
        calls: 0,
        otherwise: { kind: "retry", code: "timeout", thrownRetryable: true, calls: 0 },
      },
    ],
  ];

  it.each(rows)("%s", (_name, facts, expected) => {
    expect(shape(decideFailedAttempt({ ...base, ...facts }))).toEqual(expected);
  });

  it("stores the public message of a failure, never the provider's or the bug's text", () => {
    for (const error of [unavailable(), new Error("password=hunter2 at db:5432")]) {
      const result = decideFailedAttempt({ ...base, error });
      if (result.kind !== "retry") throw new Error(`expected retry, got ${result.kind}`);
      expect(result.failure.message).not.toMatch(/secret internals|hunter2/);
      // The thrown error keeps the cause for the worker's log.
      expect(result.error.message === result.failure.message || result.error.cause !== undefined).toBe(true);
    }
  });
});

describe("afterRefusal (the lifecycle refused a transition: another delivery owns the job, or it finished)", () => {
  const canceledElseSkipped = {
    kind: "canceled",
    when: "settling",
    calls: 0,
    otherwise: { kind: "skipped", reason: "superseded" },
  };
  const refused = (facts: Partial<FailedAttemptFacts>) => decideFailedAttempt({ ...base, ...facts });
  const rows: Array<[string, AttemptResult, Record<string, unknown>]> = [
    [
      "a refused completion is canceled if a cancel is pending, else left to the other delivery",
      {
        kind: "completed",
        completion: {
          jobId: "j",
          attempt: 1,
          result: {},
          provider: "p",
          model: "m",
          usage: { inputTokens: 1, outputTokens: 1 },
          costMicroUsd: 0,
        },
      },
      canceledElseSkipped,
    ],
    [
      "a refused retry (stale delivery) does not retry",
      refused({ error: unavailable() }),
      canceledElseSkipped,
    ],
    [
      "a refused failure (stale delivery) does not fail the job",
      refused({ ...last, error: unavailable() }),
      canceledElseSkipped,
    ],
    ["a refused postponement does not delay the job", refused({ error: limited() }), canceledElseSkipped],
    [
      "a refused cancel falls back to what the attempt came to",
      refused({ cancelRequested: true, error: unavailable() }),
      {
        kind: "retry",
        code: "provider_unavailable",
        thrownRetryable: true,
        calls: 1,
        retryAfterMs: undefined,
      },
    ],
    [
      "a refused cancel with nothing to fall back on is skipped",
      { kind: "canceled", when: "settling", calls: [] },
      { kind: "skipped", reason: "superseded" },
    ],
  ];

  it.each(rows)("%s", (_name, result, expected) => {
    expect(shape(afterRefusal(result))).toEqual(expected);
  });

  it("ends: refusing every transition in turn comes to skipped within three steps", () => {
    let result: AttemptResult = refused({ cancelRequested: true, error: unavailable() });
    const kinds: string[] = [];
    while (result.kind !== "skipped") {
      kinds.push(result.kind);
      result = afterRefusal(result);
    }
    expect(kinds).toEqual(["canceled", "retry", "canceled"]);
  });
});

describe("unclaimedResult", () => {
  const rows: Array<[string, Parameters<typeof unclaimedResult>, Record<string, unknown>]> = [
    [
      "a job that is not claimable is canceled if a cancel is pending, else skipped",
      [{ outcome: "finished" }, true],
      { kind: "canceled", when: "queued", calls: 0, otherwise: { kind: "skipped", reason: "finished" } },
    ],
    [
      "a disabled owner's job is canceled (by the claim)",
      [{ outcome: "user_disabled" }, true],
      { kind: "canceled", when: "user_disabled", calls: 0 },
    ],
    [
      "a job whose owner runs its cap is parked",
      [{ outcome: "tenant_busy", userId: "u", running: 4, cap: 4 }, true],
      { kind: "delayed", wait: "tenant" },
    ],
    [
      "a busy owner's job that cannot be parked is left alone",
      [{ outcome: "tenant_busy", userId: "u", running: 4, cap: 4 }, false],
      { kind: "canceled", when: "queued", calls: 0, otherwise: { kind: "skipped", reason: "finished" } },
    ],
  ];

  it.each(rows)("%s", (_name, [claim, canPark], expected) => {
    expect(shape(unclaimedResult(claim, canPark))).toEqual(expected);
  });
});
