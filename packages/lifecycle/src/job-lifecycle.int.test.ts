import type { AccountRepository, Database, JobCompletion, JobRepository, ProviderCallRecord } from "@genq/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobLifecycle } from "./job-lifecycle.ts";
import { createLifecycleTestContext, type LifecycleTestContext } from "./test-fixtures.ts";

let context: LifecycleTestContext;
let db: Database;
let jobs: JobRepository;
let lifecycle: JobLifecycle;
let accounts: AccountRepository;
let createUser: LifecycleTestContext["createUser"];
let claim: LifecycleTestContext["claim"];
let hold: LifecycleTestContext["hold"];
let textQuota: LifecycleTestContext["textQuota"];

beforeAll(async () => {
  context = await createLifecycleTestContext();
  ({ db, jobs, lifecycle, accounts, createUser, claim, hold, textQuota } = context);
});

afterAll(async () => {
  await context?.close();
});

/** A job claimed by a worker, as the processor sees it after `claim`. */
async function claimedJob(userId?: string): Promise<{ id: string; attempt: number }> {
  const { job } = await jobs.create({
    userId: userId ?? (await createUser()),
    type: "text",
    priority: 2,
    input: { prompt: "hello" },
  });
  const claimed = await claim(job.id);
  if (claimed === null) throw new Error("claim failed");
  return { id: claimed.id, attempt: claimed.attempts };
}

const STARTED = new Date("2026-11-22T10:00:00.000Z");

function call(seq: number, overrides: Partial<ProviderCallRecord> = {}): ProviderCallRecord {
  return {
    seq,
    provider: "openai",
    model: "gpt-4o-mini",
    startedAt: new Date(STARTED.getTime() + seq * 1_000),
    latencyMs: 100 * seq,
    outcome: "ok",
    ...overrides,
  };
}

function completion(jobId: string, attempt: number, overrides: Partial<JobCompletion> = {}): JobCompletion {
  return {
    jobId,
    attempt,
    result: { text: "hi", finishReason: "stop" },
    provider: "openai",
    model: "gpt-4o-mini",
    usage: { inputTokens: 12, outputTokens: 5 },
    costMicroUsd: 42,
    ...overrides,
  };
}

const RATE_LIMITED: ProviderCallRecord = call(1, {
  provider: "anthropic",
  model: "claude-haiku",
  keyId: "anthropic-main",
  latencyMs: 80,
  outcome: "error",
  errorCode: "rate_limited",
  errorMessage: "429 Too Many Requests",
});

describe("JobRepository provider calls", () => {
  it("records the calls, price version, key id and detailed usage of a completed attempt", async () => {
    const job = await claimedJob();

    const completed = await lifecycle.complete(
      completion(job.id, job.attempt, {
        usage: { inputTokens: 12, outputTokens: 5, cachedInputTokens: 4, reasoningTokens: 2 },
        priceVersion: "2026-11-01",
        keyId: "openai-secondary",
        calls: [
          RATE_LIMITED,
          call(2, { provider: "gemini", model: "gemini-flash", outcome: "skipped", latencyMs: 0 }),
          call(3, { keyId: "openai-secondary", inputTokens: 12, outputTokens: 5 }),
        ],
      }),
    );

    expect(completed).toBe(true);
    const row = await db.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(row).toMatchObject({ status: "completed", priceVersion: "2026-11-01", costMicroUsd: 42n });
    const usage = await db.usageRecord.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(usage).toMatchObject({
      attempt: 1,
      keyId: "openai-secondary",
      inputTokens: 12,
      outputTokens: 5,
      cachedInputTokens: 4,
      reasoningTokens: 2,
      priceVersion: "2026-11-01",
    });
    expect(await jobs.listCalls(job.id)).toEqual([
      { jobAttempt: 1, ...RATE_LIMITED },
      {
        jobAttempt: 1,
        seq: 2,
        provider: "gemini",
        model: "gemini-flash",
        startedAt: new Date("2026-11-22T10:00:02.000Z"),
        latencyMs: 0,
        outcome: "skipped",
      },
      {
        jobAttempt: 1,
        seq: 3,
        provider: "openai",
        model: "gpt-4o-mini",
        keyId: "openai-secondary",
        startedAt: new Date("2026-11-22T10:00:03.000Z"),
        latencyMs: 300,
        outcome: "ok",
        inputTokens: 12,
        outputTokens: 5,
      },
    ]);
  });

  it("completes without calls, leaving the new usage columns at their defaults", async () => {
    const job = await claimedJob();

    expect(await lifecycle.complete(completion(job.id, job.attempt))).toBe(true);

    expect((await db.job.findUniqueOrThrow({ where: { id: job.id } })).priceVersion).toBeNull();
    expect(await db.usageRecord.findUniqueOrThrow({ where: { jobId: job.id } })).toMatchObject({
      keyId: null,
      cachedInputTokens: 0,
      reasoningTokens: 0,
      priceVersion: null,
    });
    expect(await jobs.listCalls(job.id)).toEqual([]);
  });

  it("does not duplicate the calls when a completed attempt is recorded again", async () => {
    const job = await claimedJob();
    const calls = [RATE_LIMITED, call(2)];
    expect(await lifecycle.complete(completion(job.id, job.attempt, { calls }))).toBe(true);

    const replay = await lifecycle.complete(
      completion(job.id, job.attempt, {
        calls: [...calls, call(3)].map((each) => ({ ...each, latencyMs: 9 })),
      }),
    );

    expect(replay).toBe(false);
    const stored = await jobs.listCalls(job.id);
    // The first write of a (attempt, seq) stands; only the call not seen before is added.
    expect(stored.map((each) => [each.jobAttempt, each.seq, each.latencyMs])).toEqual([
      [1, 1, 80],
      [1, 2, 200],
      [1, 3, 9],
    ]);
    expect(await jobs.countUsageRecords(job.id)).toBe(1);
  });

  it("records the calls of a retried attempt under the claimed row's attempt number", async () => {
    const job = await claimedJob();

    expect(
      await lifecycle.retry(job.id, { code: "rate_limited", message: "slow down" }, [RATE_LIMITED]),
    ).toBe(true);
    // A re-delivery of the same attempt records the same calls again.
    await lifecycle.retry(job.id, { code: "rate_limited", message: "slow down" }, [RATE_LIMITED], 1);

    expect((await db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("queued");
    expect(await jobs.listCalls(job.id)).toEqual([{ jobAttempt: 1, ...RATE_LIMITED }]);
  });

  it("lists the calls of every attempt in order: by attempt, then by seq", async () => {
    const job = await claimedJob();
    await lifecycle.retry(job.id, { code: "provider_unavailable", message: "503" }, [call(2), call(1)], 1);
    const second = await claim(job.id);
    expect(second?.attempts).toBe(2);
    await lifecycle.retry(job.id, { code: "provider_unavailable", message: "503" }, [call(1)], 2);
    await claim(job.id);

    const failed = await lifecycle.fail(
      job.id,
      { code: "provider_unavailable", message: "503" },
      [call(3, { outcome: "error", errorCode: "provider_unavailable" }), call(1), call(2)],
      3,
    );

    expect(failed).toBe(true);
    expect((await db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("failed");
    const stored = await jobs.listCalls(job.id);
    expect(stored.map((each) => [each.jobAttempt, each.seq])).toEqual([
      [1, 1],
      [1, 2],
      [2, 1],
      [3, 1],
      [3, 2],
      [3, 3],
    ]);
    expect(stored.at(-1)).toMatchObject({ outcome: "error", errorCode: "provider_unavailable" });
  });

  it("does not duplicate the calls when a failed attempt is recorded again", async () => {
    const job = await claimedJob();
    const failure = { code: "credit_exhausted", message: "out of credit" };

    expect(await lifecycle.fail(job.id, failure, [RATE_LIMITED, call(2)])).toBe(true);
    expect(await lifecycle.fail(job.id, failure, [RATE_LIMITED, call(2)], job.attempt)).toBe(false);

    expect((await jobs.listCalls(job.id)).map((each) => [each.jobAttempt, each.seq])).toEqual([
      [1, 1],
      [1, 2],
    ]);
  });

  it("records the calls of an attempt whose job was canceled meanwhile", async () => {
    const userId = await createUser();
    const job = await claimedJob(userId);
    await lifecycle.cancel(userId, job.id);

    expect(await lifecycle.complete(completion(job.id, job.attempt, { calls: [call(1)] }))).toBe(false);

    expect(await jobs.countUsageRecords(job.id)).toBe(0);
    expect(await jobs.listCalls(job.id)).toEqual([{ jobAttempt: 1, ...call(1) }]);
  });

  it("records the calls of an attempt a cancel interrupted", async () => {
    const userId = await createUser();
    const job = await claimedJob(userId);
    await lifecycle.cancel(userId, job.id);

    expect(await lifecycle.cancelIfRequested(job.id, [call(1, { outcome: "error" })])).toBe(true);

    expect((await db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("canceled");
    expect(await jobs.listCalls(job.id)).toEqual([{ jobAttempt: 1, ...call(1, { outcome: "error" }) }]);
  });

  it("files a stale delivery's calls under its own attempt, not the row's newer one", async () => {
    const job = await claimedJob();
    // The job stalled and another delivery claimed it: the row says attempt 2 now.
    await claim(job.id);

    await lifecycle.retry(job.id, { code: "timeout", message: "too slow" }, [call(1)], job.attempt);

    expect((await jobs.listCalls(job.id)).map((each) => each.jobAttempt)).toEqual([1]);
  });

  it("stores latency in whole milliseconds", async () => {
    const job = await claimedJob();

    await lifecycle.fail(job.id, { code: "timeout", message: "too slow" }, [call(1, { latencyMs: 1234.56 })]);

    expect((await jobs.listCalls(job.id))[0]?.latencyMs).toBe(1235);
  });

  it("drops the calls of a job that no longer exists", async () => {
    const job = await claimedJob();
    await db.job.delete({ where: { id: job.id } });

    expect(await lifecycle.fail(job.id, { code: "timeout", message: "too slow" }, [call(1)], 1)).toBe(false);
    expect(await db.providerCall.count({ where: { jobId: job.id } })).toBe(0);
  });

  it("deletes a job's calls with the job, and with its user", async () => {
    const userId = await createUser();
    const deletedJob = await claimedJob(userId);
    const deletedUserJob = await claimedJob(userId);
    await lifecycle.fail(deletedJob.id, { code: "timeout", message: "too slow" }, [call(1), call(2)]);
    await lifecycle.fail(deletedUserJob.id, { code: "timeout", message: "too slow" }, [call(1)]);
    expect(
      await db.providerCall.count({ where: { jobId: { in: [deletedJob.id, deletedUserJob.id] } } }),
    ).toBe(3);

    await db.job.delete({ where: { id: deletedJob.id } });
    expect(await db.providerCall.count({ where: { jobId: deletedJob.id } })).toBe(0);
    expect(await db.providerCall.count({ where: { jobId: deletedUserJob.id } })).toBe(1);

    await db.user.delete({ where: { id: userId } });
    expect(await db.providerCall.count({ where: { jobId: deletedUserJob.id } })).toBe(0);
  });
});

async function reservationStatus(jobId: string): Promise<string | undefined> {
  return (await db.quotaReservation.findUnique({ where: { jobId } }))?.status;
}

describe("quota holds: settled on completion, released when a job fails or is canceled", () => {
  it("settles at most the hold on completion and reports the excess", async () => {
    const excess: unknown[] = [];
    const metered = new JobLifecycle({ db, onSettlementExcess: (item) => excess.push(item) });
    const userId = await createUser();
    const job = await claimedJob(userId);
    await hold(job.id, userId, 1_000);
    const charge = { textTokens: 1_500, images: 0, costMicroUsd: 0 };
    expect(await metered.complete(completion(job.id, job.attempt, { charge }))).toBe(true);
    expect(await textQuota(userId)).toEqual({ used: 1_000, reserved: 0 });
    expect(await reservationStatus(job.id)).toBe("settled");
    expect(excess).toEqual([{ jobId: job.id, userId, kind: "text_tokens", actual: 1_500, held: 1_000 }]);
    // A stalled duplicate's completion neither completes nor settles again.
    expect(await metered.complete(completion(job.id, job.attempt, { charge }))).toBe(false);
    expect(await textQuota(userId)).toEqual({ used: 1_000, reserved: 0 });
  });

  it("releases on failure and on cancel, on both paths, and never for a completed job", async () => {
    const userId = await createUser();
    const failing = await claimedJob(userId);
    await hold(failing.id, userId, 100);
    expect(
      await lifecycle.fail(failing.id, { code: "invalid_request", message: "no" }, [], failing.attempt),
    ).toBe(true);
    // A job with a webhook URL finishes on the general path (its outbox rows are written there).
    const { job: hooked } = await jobs.create({
      userId,
      type: "text",
      priority: 5,
      input: { prompt: "x" },
      webhookUrl: "https://example.com/hook",
    });
    await hold(hooked.id, userId, 200);
    await lifecycle.cancel(userId, hooked.id);
    const completing = await claimedJob(userId);
    await hold(completing.id, userId, 300);
    await lifecycle.complete(completion(completing.id, completing.attempt, { charge: "release" }));

    expect(await reservationStatus(failing.id)).toBe("released");
    expect(await reservationStatus(hooked.id)).toBe("released");
    expect(await reservationStatus(completing.id)).toBe("released");
    expect(await textQuota(userId)).toEqual({ used: 0, reserved: 0 });
  });

  it("rolls the failure back when an effect throws, so no job ends with its hold unreleased", async () => {
    const failing = new JobLifecycle({
      db,
      effects: {
        inTransaction: async () => {
          throw new Error("outbox unavailable");
        },
      },
    });
    const userId = await createUser();
    const { job } = await jobs.create({
      userId,
      type: "text",
      priority: 5,
      input: { prompt: "x" },
      webhookUrl: "https://example.com/hook",
    });
    const claimed = await claim(job.id);
    await hold(job.id, userId, 100);
    await expect(
      failing.fail(job.id, { code: "invalid_request", message: "no" }, [], claimed!.attempts),
    ).rejects.toThrow("outbox unavailable");
    expect((await jobs.find(job.id))?.status).toBe("active");
    expect(await reservationStatus(job.id)).toBe("reserved");
    expect(await textQuota(userId)).toEqual({ used: 0, reserved: 100 });
  });
});

describe("claims within the owner's limits, fenced completion", () => {
  async function queuedJob(userId: string, priority = 5): Promise<string> {
    const { job } = await jobs.create({ userId, type: "text", priority, input: { prompt: "hi" } });
    return job.id;
  }

  it("refuses the completion of a stale delivery once another delivery claimed the job", async () => {
    const userId = await createUser();
    const first = await claimedJob(userId);
    // The first worker stalled (still alive, still calling the provider); the job is delivered again.
    const second = await claim(first.id);
    expect(second?.attempts).toBe(first.attempt + 1);
    await hold(first.id, userId, 50);
    const charge = { textTokens: 20, images: 0, costMicroUsd: 0 };

    expect(await lifecycle.complete(completion(first.id, first.attempt, { charge }))).toBe(false);
    expect(await lifecycle.fail(first.id, { code: "timeout", message: "stale" }, [], first.attempt)).toBe(
      false,
    );
    expect(await lifecycle.retry(first.id, { code: "timeout", message: "stale" }, [], first.attempt)).toBe(
      false,
    );
    expect(await lifecycle.postpone(first.id, [], first.attempt)).toBe(false);
    expect((await db.job.findUniqueOrThrow({ where: { id: first.id } })).status).toBe("active");
    expect(await textQuota(userId)).toEqual({ used: 0, reserved: 50 });
    expect(await jobs.countUsageRecords(first.id)).toBe(0);

    expect(await lifecycle.complete(completion(first.id, second!.attempts, { charge }))).toBe(true);
    expect(await textQuota(userId)).toEqual({ used: 20, reserved: 0 });
    expect(await jobs.countUsageRecords(first.id)).toBe(1);
  });

  it("keeps a redriven run from being undone by late reports of the attempts before the redrive", async () => {
    const userId = await createUser();
    const first = await claimedJob(userId);
    // Attempt 1 stalled; attempt 2 was delivered and failed for good; an operator redrives.
    const second = await claim(first.id);
    expect(second?.attempts).toBe(2);
    expect(await lifecycle.fail(first.id, { code: "timeout", message: "gave up" }, [call(1)], 2)).toBe(true);
    const redriven = await lifecycle.redrive({ jobId: first.id, hold: undefined });
    expect(redriven.outcome).toBe("redriven");
    const stale = { code: "timeout", message: "late" };
    const lateReports = async (attempt: number) => [
      await lifecycle.complete(completion(first.id, attempt)),
      await lifecycle.fail(first.id, stale, [], attempt),
      await lifecycle.retry(first.id, stale, [], attempt),
      await lifecycle.postpone(first.id, [], attempt),
    ];
    // While it waits in the queue: the stalled attempt 1 and a repeated report of attempt 2 change nothing.
    expect([...(await lateReports(1)), ...(await lateReports(2))]).toEqual(Array(8).fill(false));
    expect(await db.job.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      status: "queued",
      attempts: 2,
      // The failure it was redriven from, not a late report's.
      errorMessage: "gave up",
    });
    // Its new run is attempt 3, and only attempt 3 may finish it.
    const third = await claim(first.id);
    expect(third?.attempts).toBe(3);
    expect([...(await lateReports(1)), ...(await lateReports(2))]).toEqual(Array(8).fill(false));
    expect((await db.job.findUniqueOrThrow({ where: { id: first.id } })).status).toBe("active");
    expect(await lifecycle.complete(completion(first.id, 3, { calls: [call(1)] }))).toBe(true);
    expect(await db.job.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      status: "completed",
      attempts: 3,
    });
    expect(await jobs.countUsageRecords(first.id)).toBe(1);
    // The history stays: the failed attempt's call and the new run's.
    expect((await jobs.listCalls(first.id)).map((entry) => entry.jobAttempt)).toEqual([2, 3]);
  });

  it("lets a run past its postponement deadline fail the job it just postponed, and no other attempt", async () => {
    const job = await claimedJob();
    // The processor's order for such a run: counted as a postponement, then failed.
    expect(await lifecycle.postpone(job.id, [], job.attempt, new Date())).toBe(true);
    const stale = { code: "provider_unavailable", message: "past the deadline" };
    expect(await lifecycle.fail(job.id, stale, [], job.attempt - 1)).toBe(false);
    expect(await lifecycle.fail(job.id, stale, [], job.attempt)).toBe(true);
    expect(await db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({
      status: "failed",
      postponements: 1,
    });
  });

  it("leaves a job queued while its owner runs its cap of jobs, and claims it once one stops", async () => {
    const userId = await createUser();
    const other = await createUser();
    const limits = { tenantCap: (plan: string) => (plan === "basic" ? 2 : 100) };
    const [a, b, c] = [await queuedJob(userId), await queuedJob(userId), await queuedJob(userId)];
    const others = await queuedJob(other);

    const claims = await Promise.all([a, b, c].map((id) => lifecycle.claim(id, limits)));
    expect(claims.map((claim) => claim.outcome).sort()).toEqual(["claimed", "claimed", "tenant_busy"]);
    const refused = claims.find((claim) => claim.outcome === "tenant_busy");
    expect(refused).toMatchObject({ userId, running: 2, cap: 2 });
    // Another tenant is not held back by this one's cap.
    expect((await lifecycle.claim(others, limits)).outcome).toBe("claimed");

    const busyId = [a, b, c][claims.indexOf(refused!)]!;
    expect((await db.job.findUniqueOrThrow({ where: { id: busyId } })).status).toBe("queued");
    const runningId = [a, b, c].find((id, index) => id !== busyId && claims[index]?.outcome === "claimed")!;
    await lifecycle.complete(completion(runningId, 1));
    expect((await lifecycle.claim(busyId, limits)).outcome).toBe("claimed");
  });

  it("never lets concurrent claims of one owner overshoot the cap", async () => {
    const userId = await createUser();
    const ids = await Promise.all(Array.from({ length: 8 }, () => queuedJob(userId)));
    const claims = await Promise.all(ids.map((id) => lifecycle.claim(id, { tenantCap: () => 3 })));
    expect(claims.filter((claim) => claim.outcome === "claimed")).toHaveLength(3);
    expect(await db.job.count({ where: { userId, status: "active" } })).toBe(3);
  });

  it("cancels instead of claiming a job whose owner is disabled", async () => {
    const userId = await createUser();
    const id = await queuedJob(userId);
    const underCap = await queuedJob(userId);
    await accounts.updateUser(userId, { disabled: true });

    expect(await lifecycle.claim(id)).toEqual({ outcome: "user_disabled" });
    expect(await lifecycle.claim(underCap, { tenantCap: () => 5 })).toEqual({ outcome: "user_disabled" });
    expect(await claim(id)).toBeNull();
    for (const each of [id, underCap])
      expect(await db.job.findUniqueOrThrow({ where: { id: each } })).toMatchObject({
        status: "canceled",
        attempts: 0,
      });
  });
});
