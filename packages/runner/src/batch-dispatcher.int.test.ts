import { randomBytes } from "node:crypto";
import {
  AccountRepository,
  BatchItemSpool,
  BatchRepository,
  createPrismaClient,
  type Database,
  type Plan,
} from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { createRedisConnection, JobQueues } from "@genq/queue";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BatchDispatcher } from "./batch-dispatcher.ts";

let database: TestDatabase;
let db: Database;
let redis: Redis;
let queues: JobQueues;
let batches: BatchRepository;
let lifecycle: JobLifecycle;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  redis = createRedisConnection({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", role: "producer" });
  redis.on("error", () => {});
  lifecycle = new JobLifecycle({ db });
  batches = new BatchRepository({ db, hooks: lifecycle.effects });
  accounts = new AccountRepository({ db });
});

beforeEach(async () => {
  queues = new JobQueues({ connection: redis, prefix: `t${randomBytes(5).toString("hex")}` });
  // Each test starts without running batches of earlier tests.
  await db.batch.updateMany({ where: { status: "running" }, data: { status: "canceled" } });
});

afterEach(async () => {
  const prefix = queues.prefix;
  await queues.close();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
});

afterAll(async () => {
  redis?.disconnect();
  await db?.$disconnect();
  await database?.drop();
});

async function createUser(plan: Plan): Promise<string> {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan,
  });
  return user.id;
}

async function createBatch(userId: string, items: number): Promise<string> {
  async function* checked() {
    for (let index = 0; index < items; index++)
      yield { index, valid: true as const, input: { prompt: `i${index}` } };
  }
  const spool = await BatchItemSpool.fromItems(checked());
  try {
    const { batch } = await batches.create({ userId, type: "text", priority: 7 }, spool);
    return batch.id;
  } finally {
    await spool.close();
  }
}

function dispatcher(options: Partial<ConstructorParameters<typeof BatchDispatcher>[0]> = {}) {
  return new BatchDispatcher({
    batches,
    queues,
    logger: pino({ level: "silent" }),
    tenantCap: 5,
    ...options,
  });
}

async function released(batchId: string): Promise<number[]> {
  const rows = await db.job.findMany({
    where: { batchId, dispatchedAt: { not: null } },
    orderBy: { itemIndex: "asc" },
    select: { itemIndex: true },
  });
  return rows.map((row) => row.itemIndex ?? -1);
}

async function finish(batchId: string, count: number): Promise<void> {
  const rows = await db.job.findMany({
    where: { batchId, status: "queued", dispatchedAt: { not: null } },
    orderBy: { itemIndex: "asc" },
    take: count,
  });
  for (const row of rows) await lifecycle.fail(row.id, { code: "invalid_request", message: "done" });
}

describe("BatchDispatcher", () => {
  it("keeps each tenant at its plan's cap, oldest batch first, and refills as items finish", async () => {
    const alice = await createUser("basic");
    const bob = await createUser("professional");
    const aliceOld = await createBatch(alice, 40);
    const aliceNew = await createBatch(alice, 40);
    const bobBatch = await createBatch(bob, 40);
    const fair = dispatcher();

    expect(await fair.dispatchOnce()).toBe(15);
    expect(await released(aliceOld)).toEqual([0, 1, 2, 3, 4]);
    expect(await released(aliceNew)).toEqual([]);
    expect(await released(bobBatch)).toHaveLength(10); // professional: 2 × the base cap
    const counts = await queues.queue("text").getJobCounts("prioritized", "waiting");
    expect((counts.prioritized ?? 0) + (counts.waiting ?? 0)).toBe(15);

    // Nobody has room: nothing more is released.
    expect(await fair.dispatchOnce()).toBe(0);

    await finish(aliceOld, 3);
    expect(await fair.dispatchOnce()).toBe(3);
    expect(await released(aliceOld)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("refills a tenant once a quarter of its cap is free, not after every item", async () => {
    const erin = await createUser("basic");
    const batchId = await createBatch(erin, 40);
    const fair = dispatcher({ tenantCap: 8 });
    expect(await fair.dispatchOnce()).toBe(8);
    await finish(batchId, 1);
    expect(await fair.dispatchOnce()).toBe(0);
    await finish(batchId, 1);
    expect(await fair.dispatchOnce()).toBe(2);
  });

  it("moves on to a tenant's next batch when the oldest is fully released", async () => {
    const carol = await createUser("basic");
    const first = await createBatch(carol, 3);
    const second = await createBatch(carol, 10);
    const fair = dispatcher();
    expect(await fair.dispatchOnce()).toBe(5);
    expect(await released(first)).toEqual([0, 1, 2]);
    expect(await released(second)).toEqual([0, 1]);
  });

  it("releases nothing from a batch being canceled, but counts its running items against the tenant", async () => {
    const dave = await createUser("basic");
    const canceling = await createBatch(dave, 10);
    const fair = dispatcher();
    expect(await fair.dispatchOnce()).toBe(5);
    const running = await db.job.findFirstOrThrow({
      where: { batchId: canceling, dispatchedAt: { not: null } },
    });
    await lifecycle.claim(running.id);
    await batches.requestCancel(dave, canceling);
    const other = await createBatch(dave, 10);
    // One item of the canceled batch still runs: 4 of the cap are left.
    expect(await fair.dispatchOnce()).toBe(4);
    expect(await released(other)).toEqual([0, 1, 2, 3]);
  });

  it("shares a short per-pass budget across tenants in turn", async () => {
    const tenants = await Promise.all([createUser("basic"), createUser("basic"), createUser("basic")]);
    const batchIds = await Promise.all(tenants.map((userId) => createBatch(userId, 20)));
    const fair = dispatcher({ maxPerPass: 2, quantum: 1 });
    for (let pass = 0; pass < 3; pass++) expect(await fair.dispatchOnce()).toBe(2);
    const perTenant = await Promise.all(batchIds.map(async (id) => (await released(id)).length));
    expect(perTenant).toEqual([2, 2, 2]);
  });
});
