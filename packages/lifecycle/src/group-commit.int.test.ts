import {
  type AccountRepository,
  type Database,
  type HoldExcess,
  type JobCompletion,
  type JobRepository,
  sqlPool,
} from "@genq/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobLifecycle } from "./job-lifecycle.ts";
import { createLifecycleTestContext, type LifecycleTestContext } from "./test-fixtures.ts";

let context: LifecycleTestContext;
let db: Database;
let jobs: JobRepository;
let accounts: AccountRepository;
let createUser: LifecycleTestContext["createUser"];
let hold: LifecycleTestContext["hold"];
let textQuota: LifecycleTestContext["textQuota"];

beforeAll(async () => {
  context = await createLifecycleTestContext({ maxConnections: 8 });
  ({ db, jobs, accounts, createUser, hold, textQuota } = context);
});

afterAll(async () => {
  await context?.close();
});

/** A claimed job holding `held` text tokens, as after admission and claim. */
async function claimedWithHold(
  lifecycle: JobLifecycle,
  userId: string,
  held: number,
  webhookUrl?: string,
): Promise<{ id: string; attempt: number }> {
  const { job } = await jobs.create({
    userId,
    type: "text",
    priority: 5,
    input: { prompt: "hi" },
    webhookUrl,
  });
  await hold(job.id, userId, held);
  const claim = await lifecycle.claim(job.id);
  if (claim.outcome !== "claimed") throw new Error(`claim: ${claim.outcome}`);
  expect(claim.held).toBe(true);
  return { id: job.id, attempt: claim.job.attempts };
}

function completion(jobId: string, attempt: number, used: number): JobCompletion {
  return {
    jobId,
    attempt,
    result: { text: `answer of ${jobId}`, finishReason: "stop" },
    provider: "mock",
    model: "mock-1",
    usage: { inputTokens: used - 1, outputTokens: 1 },
    costMicroUsd: used,
    calls: [
      { seq: 1, provider: "mock", model: "mock-1", startedAt: new Date(), latencyMs: 1, outcome: "ok" },
    ],
    charge: { textTokens: used, images: 0, costMicroUsd: 0 },
  };
}

/** Counts the statements the lifecycle sends, by prepared name. */
function countStatements(): { counts: Map<string, number>; stop(): void } {
  const pool = sqlPool(db) as unknown as { query: (...args: unknown[]) => unknown };
  const original = pool.query;
  const counts = new Map<string, number>();
  pool.query = function counted(this: unknown, ...args: unknown[]) {
    const config = args[0] as { name?: string } | string;
    const name = typeof config === "object" && config.name !== undefined ? config.name : "other";
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return original.apply(this, args);
  };
  return {
    counts,
    stop() {
      pool.query = original;
    },
  };
}

describe("group commit of completions", () => {
  it("completes concurrent jobs of several tenants in few statements, each charged exactly once", async () => {
    const excess: HoldExcess[] = [];
    const lifecycle = new JobLifecycle({ db, onSettlementExcess: (item) => excess.push(item) });
    const users = [await createUser(), await createUser(), await createUser()];
    const claimed = [];
    for (let index = 0; index < 60; index++) {
      const userId = users[index % 3]!;
      claimed.push({ userId, ...(await claimedWithHold(lifecycle, userId, 100)) });
    }
    // One job used more than it held: charged its hold, the excess reported.
    const overspender = claimed[7]!;
    const statements = countStatements();
    let results: boolean[];
    try {
      results = await Promise.all([
        ...claimed.map((job) =>
          lifecycle.complete(completion(job.id, job.attempt, job === overspender ? 150 : 40)),
        ),
        // A stalled duplicate of job 0 (same attempt) and a stale delivery of job 1 (an older attempt).
        lifecycle.complete(completion(claimed[0]!.id, claimed[0]!.attempt, 40)),
        lifecycle.complete(completion(claimed[1]!.id, claimed[1]!.attempt - 1, 40)),
      ]);
    } finally {
      statements.stop();
    }
    expect(results.slice(0, 60).every(Boolean)).toBe(true);
    expect(results.slice(60)).toEqual([false, false]);
    expect(statements.counts.get("genq_complete_many") ?? 0).toBeGreaterThan(0);
    expect(statements.counts.get("genq_complete_many") ?? 0).toBeLessThan(10);

    for (const userId of users) {
      const mine = claimed.filter((job) => job.userId === userId);
      const used = mine.reduce((sum, job) => sum + (job === overspender ? 100 : 40), 0);
      expect(await textQuota(userId)).toEqual({ used, reserved: 0 });
    }
    expect(await db.usageRecord.count({ where: { jobId: { in: claimed.map((job) => job.id) } } })).toBe(60);
    // One call per job, plus the stale delivery's, filed under its own (older) attempt: it happened.
    expect(await db.providerCall.count({ where: { jobId: { in: claimed.map((job) => job.id) } } })).toBe(61);
    expect(
      await db.job.count({ where: { id: { in: claimed.map((job) => job.id) }, status: "completed" } }),
    ).toBe(60);
    expect(excess).toEqual([
      { jobId: overspender.id, userId: overspender.userId, kind: "text_tokens", actual: 150, held: 100 },
    ]);
  });

  it("sends a job with effects beyond its rows (a webhook) through the general path, in the same burst", async () => {
    const lifecycle = new JobLifecycle({ db });
    const userId = await createUser();
    const plain = await claimedWithHold(lifecycle, userId, 100);
    const hooked = await claimedWithHold(lifecycle, userId, 100, "https://example.com/hook");
    const results = await Promise.all([
      lifecycle.complete(completion(plain.id, plain.attempt, 10)),
      lifecycle.complete(completion(hooked.id, hooked.attempt, 20)),
    ]);
    expect(results).toEqual([true, true]);
    expect(await textQuota(userId)).toEqual({ used: 30, reserved: 0 });
  });

  it("fails every caller of a group whose statement fails, and completes nothing of it", async () => {
    const lifecycle = new JobLifecycle({ db });
    const userId = await createUser();
    const first = await claimedWithHold(lifecycle, userId, 100);
    const second = await claimedWithHold(lifecycle, userId, 100);
    // A result JSON cannot carry a NUL character: the whole statement is refused.
    const poisoned = { ...completion(second.id, second.attempt, 10), result: { text: "\u0000" } };
    const results = await Promise.allSettled([
      lifecycle.complete(completion(first.id, first.attempt, 10)),
      lifecycle.complete(poisoned),
    ]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(await db.job.count({ where: { id: { in: [first.id, second.id] }, status: "active" } })).toBe(2);
    expect(await textQuota(userId)).toEqual({ used: 0, reserved: 200 });
  });

  it("claims concurrent deliveries in few statements, each job once, none of a disabled owner", async () => {
    const lifecycle = new JobLifecycle({ db });
    const active = await createUser();
    const disabled = await createUser();
    const queued = async (userId: string) =>
      (await jobs.create({ userId, type: "text", priority: 5, input: { prompt: "hi" } })).job.id;
    const mine = await Promise.all(Array.from({ length: 40 }, () => queued(active)));
    const theirs = await Promise.all(Array.from({ length: 10 }, () => queued(disabled)));
    const finished = await queued(active);
    await db.job.update({ where: { id: finished }, data: { status: "completed" } });
    await accounts.updateUser(disabled, { disabled: true });

    const statements = countStatements();
    let outcomes: Awaited<ReturnType<JobLifecycle["claim"]>>[];
    try {
      // The same job delivered twice at once (a stalled duplicate) is claimed twice, in order.
      outcomes = await Promise.all([...mine, ...theirs, finished, mine[0]!].map((id) => lifecycle.claim(id)));
    } finally {
      statements.stop();
    }
    expect(outcomes.slice(0, 40).every((outcome) => outcome.outcome === "claimed")).toBe(true);
    expect(outcomes.slice(40, 50).every((outcome) => outcome.outcome === "user_disabled")).toBe(true);
    expect(outcomes[50]).toEqual({ outcome: "finished" });
    expect(outcomes[51]).toMatchObject({ outcome: "claimed", job: { id: mine[0], attempts: 2 } });
    expect(statements.counts.get("genq_claim_many") ?? 0).toBeGreaterThan(0);
    expect(statements.counts.get("genq_claim_many") ?? 0).toBeLessThan(10);
    expect(await db.job.count({ where: { id: { in: mine }, status: "active" } })).toBe(40);
    expect(await db.job.count({ where: { id: { in: theirs }, status: "canceled" } })).toBe(10);
  });
});
