import { randomBytes } from "node:crypto";
import type { CheckedBatchItem } from "@genq/core";
import {
  AccountRepository,
  BatchItemSpool,
  BatchNotCancelableError,
  BatchRepository,
  createPrismaClient,
  type Database,
  type JobRecord,
} from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobLifecycle } from "./job-lifecycle.ts";

let database: TestDatabase;
let db: Database;
let batches: BatchRepository;
let lifecycle: JobLifecycle;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  lifecycle = new JobLifecycle({ db });
  batches = new BatchRepository({ db, hooks: lifecycle.effects });
  accounts = new AccountRepository({ db });
});

afterAll(async () => {
  await Promise.all(spools.map((spool) => spool.close()));
  await db?.$disconnect();
  await database?.drop();
});

async function createUser(): Promise<string> {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan: "basic",
  });
  return user.id;
}

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

async function claim(jobId: string): Promise<JobRecord | null> {
  const outcome = await lifecycle.claim(jobId);
  return outcome.outcome === "claimed" ? outcome.job : null;
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
