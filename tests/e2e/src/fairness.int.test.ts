import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

/**
 * Per-tenant fairness: while user A's 5,000-item batch runs, single jobs of A and
 * of another user B are not stuck behind it. The fair dispatcher keeps at most
 * TENANT_CAP of A's items in BullMQ (waiting or running), so a job submitted at the
 * batch's own priority (low) has at most TENANT_CAP batch items ahead of it, plus
 * the at most CONCURRENCY items the worker had already taken but not yet marked
 * started; a job at the default priority (normal) goes before every waiting batch
 * item, so only those CONCURRENCY items can start before it.
 */
const TENANT_CAP = 8;
const CONCURRENCY = 4;
const BATCH_ITEMS = 5_000;

let harness: Harness;

beforeAll(async () => {
  harness = await new Harness({
    workerEnv: {
      GENQ_TEXT_CONCURRENCY: String(CONCURRENCY),
      GENQ_BATCH_TENANT_CAP: String(TENANT_CAP),
      GENQ_BATCH_DISPATCH_INTERVAL_MS: "50",
    },
  }).start();
}, 60_000);

afterAll(async () => {
  await harness?.close();
});

function post(apiKey: string, url: string, payload: unknown) {
  return harness.app.inject({
    method: "POST",
    url,
    headers: { authorization: `Bearer ${apiKey}` },
    payload: payload as Record<string, unknown>,
  });
}

async function batchCounts(batchId: string) {
  return harness.db.batch.findUniqueOrThrow({ where: { id: batchId } });
}

describe("per-tenant fairness", () => {
  it("runs single jobs of the batch's owner and of another user within a bounded number of batch items", async () => {
    const alice = await harness.createUser();
    const bob = await harness.createUser();
    // Each batch item takes 100 ms on the mock: 5,000 of them would take minutes at this concurrency.
    const items = Array.from({ length: BATCH_ITEMS }, (_, index) => ({
      prompt: `bulk ${index}`,
      providerOptions: { mock: { latencyMs: 100 } },
    }));
    const accepted = await post(alice.apiKey, "/v1/batches", { type: "text", items });
    expect(accepted.statusCode).toBe(202);
    const batchId = (accepted.json() as { id: string }).id;
    // Steady state: the worker is busy with batch items and the dispatcher keeps refilling.
    await waitUntil(async () => (await batchCounts(batchId)).completedCount >= 2 * TENANT_CAP, 30_000);

    // The dispatcher never has more than the cap of Alice's items in BullMQ.
    const inQueue = await harness.queues.queue("text").getJobCounts("waiting", "prioritized", "active");
    expect((inQueue.waiting ?? 0) + (inQueue.prioritized ?? 0) + (inQueue.active ?? 0)).toBeLessThanOrEqual(
      TENANT_CAP,
    );

    const probes = [
      {
        name: "alice, low (the batch's priority)",
        user: alice,
        priority: "low",
        bound: TENANT_CAP + CONCURRENCY,
      },
      { name: "bob, low", user: bob, priority: "low", bound: TENANT_CAP + CONCURRENCY },
      { name: "alice, normal (the default)", user: alice, priority: "normal", bound: CONCURRENCY },
      { name: "bob, normal", user: bob, priority: "normal", bound: CONCURRENCY },
    ] as const;
    const outcomes = await Promise.all(
      probes.map(async (probe) => {
        const submitted = await post(probe.user.apiKey, "/v1/jobs", {
          type: "text",
          priority: probe.priority,
          input: { prompt: `interactive ${probe.name}` },
        });
        expect(submitted.statusCode).toBe(202);
        const id = (submitted.json() as { id: string }).id;
        const done = await harness.waitForJob(probe.user.apiKey, id, undefined, 30_000);
        const job = await harness.db.job.findUniqueOrThrow({ where: { id } });
        // Batch items that started while this job waited: its position behind the batch.
        const startedWhileWaiting = await harness.db.job.count({
          where: { batchId, startedAt: { gt: job.createdAt, lt: job.startedAt ?? new Date() } },
        });
        const waitedMs = (job.startedAt?.getTime() ?? Date.now()) - job.createdAt.getTime();
        return { probe, status: done.status, startedWhileWaiting, waitedMs };
      }),
    );
    const remaining = await batchCounts(batchId);
    for (const { probe, status, startedWhileWaiting, waitedMs } of outcomes) {
      expect(status, probe.name).toBe("completed");
      expect(startedWhileWaiting, `${probe.name} waited ${waitedMs} ms`).toBeLessThanOrEqual(probe.bound);
    }
    // They all finished while the batch still had thousands of items to go.
    const finished = remaining.completedCount + remaining.failedCount + remaining.canceledCount;
    expect(remaining.total - finished).toBeGreaterThan(BATCH_ITEMS - 1_000);

    // Cancel the rest to keep the test short; running items finish and the batch ends canceled.
    const canceled = await post(alice.apiKey, `/v1/batches/${batchId}/cancel`, {});
    expect(canceled.statusCode).toBe(200);
    await waitUntil(async () => (await batchCounts(batchId)).status === "canceled", 30_000);
  }, 60_000);

  it("shares the workers between two users' batches instead of running them one after the other", async () => {
    const carol = await harness.createUser();
    const dave = await harness.createUser();
    const items = (who: string) =>
      Array.from({ length: 1_000 }, (_, index) => ({
        prompt: `${who} ${index}`,
        providerOptions: { mock: { latencyMs: 50 } },
      }));
    const first = await post(carol.apiKey, "/v1/batches", { type: "text", items: items("carol") });
    const firstId = (first.json() as { id: string }).id;
    // Carol's batch is running before Dave's even arrives.
    await waitUntil(async () => (await batchCounts(firstId)).completedCount >= TENANT_CAP, 30_000);
    const second = await post(dave.apiKey, "/v1/batches", { type: "text", items: items("dave") });
    const secondId = (second.json() as { id: string }).id;
    await waitUntil(async () => (await batchCounts(secondId)).completedCount >= 40, 30_000);
    // Dave's 40 items did not wait for Carol's 1,000: both progressed side by side.
    const carolAfter = await batchCounts(firstId);
    expect(carolAfter.completedCount).toBeLessThan(1_000 - 500);
    for (const [user, id] of [
      [carol, firstId],
      [dave, secondId],
    ] as const) {
      expect((await post(user.apiKey, `/v1/batches/${id}/cancel`, {})).statusCode).toBe(200);
    }
    await waitUntil(
      async () =>
        (await batchCounts(firstId)).status === "canceled" &&
        (await batchCounts(secondId)).status === "canceled",
      30_000,
    );
  }, 60_000);
});
