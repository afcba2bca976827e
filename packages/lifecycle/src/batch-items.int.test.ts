import type { CheckedBatchItem } from "@genq/core";
import { BatchItemSpool, BatchNotCancelableError, BatchRepository, type Database } from "@genq/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobLifecycle } from "./job-lifecycle.ts";
import { createLifecycleTestContext, type LifecycleTestContext } from "./test-fixtures.ts";

let context: LifecycleTestContext;
let db: Database;
let batches: BatchRepository;
let lifecycle: JobLifecycle;
let createUser: LifecycleTestContext["createUser"];
let claim: LifecycleTestContext["claim"];

beforeAll(async () => {
  context = await createLifecycleTestContext();
  ({ db, lifecycle, createUser, claim } = context);
  batches = new BatchRepository({ db, hooks: lifecycle.effects });
});

afterAll(async () => {
  await Promise.all(spools.map((spool) => spool.close()));
  await context?.close();
});

const spools: BatchItemSpool[] = [];

/** `count` valid items, spooled as the API does before storing. */
async function checked(count: number): Promise<BatchItemSpool> {
  async function* items(): AsyncIterable<CheckedBatchItem> {
    for (let index = 0; index < count; index++)
      yield { index, valid: true, input: { prompt: `item ${index}` } };
  }
  const spool = await BatchItemSpool.fromItems(items());
  spools.push(spool);
  return spool;
}

describe("batch items through the lifecycle", () => {
  it("cancels held-back and dispatched items, lets active ones finish, then ends canceled", async () => {
    const userId = await createUser();
    const { batch } = await batches.create({ userId, type: "text", priority: 7 }, await checked(6));
    const released = await batches.claimItems(batch.id, 2);
    const running = await claim(released[0]!.id);
    expect(running).not.toBeNull();
    const { batch: canceling, dispatched } = await batches.requestCancel(userId, batch.id);
    expect(dispatched.map((item) => item.id)).toEqual([released[1]!.id]);
    expect(canceling).toMatchObject({
      status: "running",
      cancelRequested: true,
      canceledCount: 5,
      dispatchedCount: 6,
    });
    expect(await batches.claimItems(batch.id, 10)).toEqual([]);
    await lifecycle.complete({
      jobId: running!.id,
      attempt: running!.attempts,
      result: { text: "done" },
      provider: "mock",
      model: "mock-1",
      usage: { inputTokens: 1, outputTokens: 1 },
      costMicroUsd: 0,
    });
    const ended = await batches.findForUser(userId, batch.id);
    expect(ended).toMatchObject({ status: "canceled", completedCount: 1, canceledCount: 5 });
    expect((await batches.requestCancel(userId, batch.id)).batch.status).toBe("canceled");
  });

  it("refuses to cancel a completed batch and hides other users' batches", async () => {
    const userId = await createUser();
    const { batch } = await batches.create({ userId, type: "text", priority: 7 }, await checked(1));
    const [item] = await batches.claimItems(batch.id, 1);
    await lifecycle.fail(item!.id, { code: "invalid_request", message: "no" });
    expect((await batches.findForUser(userId, batch.id)).status).toBe("completed");
    await expect(batches.requestCancel(userId, batch.id)).rejects.toThrow(BatchNotCancelableError);
    await expect(batches.findForUser(await createUser(), batch.id)).rejects.toThrow(/not found/);
  });

  it("counts items finished together on their batch and ends it exactly once", async () => {
    const events: string[] = [];
    const counting = new JobLifecycle({
      db,
      effects: {
        ...lifecycle.effects,
        afterCommit: (_jobs, finished) => {
          for (const event of finished) if (event.type.startsWith("batch.")) events.push(event.type);
        },
      },
    });
    const userId = await createUser();
    const { batch } = await batches.create({ userId, type: "text", priority: 7 }, await checked(30));
    const released = await batches.claimItems(batch.id, 30);
    const claimed = [];
    for (const item of released) {
      const outcome = await counting.claim(item.id);
      if (outcome.outcome !== "claimed") throw new Error(outcome.outcome);
      claimed.push(outcome.job);
    }
    const [failing, ...completing] = claimed;
    await Promise.all([
      counting.fail(failing!.id, { code: "invalid_request", message: "no" }, [], failing!.attempts),
      ...completing.map((job) =>
        counting.complete({
          jobId: job.id,
          attempt: job.attempts,
          result: { text: "done" },
          provider: "mock",
          model: "mock-1",
          usage: { inputTokens: 1, outputTokens: 1 },
          costMicroUsd: 0,
        }),
      ),
    ]);
    expect(await batches.findForUser(userId, batch.id)).toMatchObject({
      status: "completed",
      completedCount: 29,
      failedCount: 1,
      canceledCount: 0,
    });
    expect(events).toEqual(["batch.completed"]);
  });

  it("finishes the items of a batch with a webhook URL on the general path, counted alike", async () => {
    const userId = await createUser();
    const { batch } = await batches.create(
      { userId, type: "text", priority: 7, webhookUrl: "https://example.com/batch" },
      await checked(2),
    );
    const released = await batches.claimItems(batch.id, 2);
    for (const item of released) {
      const running = await claim(item.id);
      await lifecycle.fail(item.id, { code: "invalid_request", message: "no" }, [], running!.attempts);
    }
    expect(await batches.findForUser(userId, batch.id)).toMatchObject({
      status: "completed",
      failedCount: 2,
    });
  });
});
