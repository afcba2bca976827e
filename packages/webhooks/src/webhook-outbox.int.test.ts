import { randomBytes } from "node:crypto";
import type { GenqEvent } from "@genq/core";
import { AccountRepository, createPrismaClient, type Database, WebhookRepository } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookOutbox } from "./webhook-outbox.ts";
import { WebhookQueue } from "./webhook-queue.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("WebhookOutbox", () => {
  const prefix = `t${randomBytes(5).toString("hex")}`;
  let database: TestDatabase;
  let db: Database;
  let redis: Redis;
  let queue: WebhookQueue;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    queue = new WebhookQueue({ connection: redis, prefix });
  });

  afterAll(async () => {
    await queue?.queue.obliterate({ force: true });
    await queue?.close();
    redis?.disconnect();
    await db?.$disconnect();
    await database?.drop();
  });

  it("writes a bulk transition's messages after commit in bounded transactions, and queues each once", async () => {
    const repository = new WebhookRepository({ db });
    const { user } = await new AccountRepository({ db }).createUser({
      email: `${randomBytes(6).toString("hex")}@example.com`,
      plan: "basic",
    });
    for (let index = 0; index < 20; index += 1) {
      await repository.createEndpoint({ userId: user.id, url: `https://many.example.com/${index}` });
    }
    const errors: unknown[] = [];
    const outbox = new WebhookOutbox({ repository, queue, onEnqueueError: (error) => errors.push(error) });
    // 200 single jobs canceled at once (e.g. a disabled user's): 4,000 messages owed.
    const events: GenqEvent[] = Array.from({ length: 200 }, (_, index) => ({
      type: "job.canceled",
      userId: user.id,
      jobId: `0195f0c2-0000-7000-8000-${index.toString(16).padStart(12, "0")}`,
      batchId: null,
      webhookUrl: null,
      timestamp: new Date(),
      data: { status: "canceled" },
    }));
    await db.$transaction((transaction) => outbox.write(transaction, events));
    // The finishing transaction stored one row per event, no message.
    expect(await db.webhookFanout.count()).toBe(200);
    expect(await db.webhookMessage.count()).toBe(0);

    outbox.dispatch(events);
    const deadline = Date.now() + 30_000;
    while ((await queue.queue.count()) < 4_000) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(errors).toEqual([]);
    expect(await db.webhookMessage.count()).toBe(4_000);
    expect(await db.webhookFanout.count()).toBe(0);
    const counts = await queue.queue.getJobCounts("waiting", "delayed");
    expect((counts.waiting ?? 0) + (counts.delayed ?? 0)).toBe(4_000);
  }, 60_000);
});
