import { randomBytes } from "node:crypto";
import { type CheckedBatchItem, IdempotencyConflictError } from "@genq/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountRepository } from "./account-repository.ts";
import { BatchItemSpool } from "./batch-item-spool.ts";
import { BatchRepository, EmptyBatchError } from "./batch-repository.ts";
import { createPrismaClient, type Database } from "./client.ts";
import { createTestDatabase, type TestDatabase } from "./testing/index.ts";

let database: TestDatabase;
let db: Database;
let batches: BatchRepository;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  batches = new BatchRepository({ db });
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

/** `count` checked items (those in `invalid` refused), spooled as the API does before storing. */
async function checked(count: number, invalid: ReadonlySet<number> = new Set()): Promise<BatchItemSpool> {
  async function* items(): AsyncIterable<CheckedBatchItem> {
    for (let index = 0; index < count; index++) {
      yield invalid.has(index)
        ? { index, valid: false, message: "prompt: must not be empty" }
        : { index, valid: true, input: { prompt: `item ${index}` } };
    }
  }
  const spool = await BatchItemSpool.fromItems(items());
  spools.push(spool);
  return spool;
}

describe("BatchRepository", () => {
  it("stores valid items as held-back jobs in item order and lists the invalid ones", async () => {
    const userId = await createUser();
    const { batch, created, invalidItems, invalidCount } = await batches.create(
      { userId, type: "text", priority: 7 },
      await checked(4_500, new Set([3, 4_000])),
    );
    expect(created).toBe(true);
    expect(batch.total).toBe(4_498);
    expect(invalidCount).toBe(2);
    expect(invalidItems).toEqual([
      { index: 3, message: "prompt: must not be empty" },
      { index: 4_000, message: "prompt: must not be empty" },
    ]);
    const rows = await db.job.findMany({ where: { batchId: batch.id }, orderBy: { itemIndex: "asc" } });
    expect(rows).toHaveLength(4_498);
    expect(
      rows.every((row) => row.dispatchedAt === null && row.status === "queued" && row.userId === userId),
    ).toBe(true);
    expect(rows[3]?.itemIndex).toBe(4);
    expect(rows[3]?.input).toEqual({ prompt: "item 4" });
    // UUIDv7 ids follow item order, so job lists show items in order too.
    expect(rows.map((row) => row.id)).toEqual(rows.map((row) => row.id).sort());
  });

  it("stores nothing when no item is valid", async () => {
    const userId = await createUser();
    await expect(
      batches.create({ userId, type: "text", priority: 7 }, await checked(2, new Set([0, 1]))),
    ).rejects.toThrow(EmptyBatchError);
    expect(await db.batch.count({ where: { userId } })).toBe(0);
  });

  it("answers a repeated idempotency key with the same batch, and refuses a different request", async () => {
    const userId = await createUser();
    const first = await batches.create(
      { userId, type: "text", priority: 7, idempotencyKey: "k1", requestHash: "hash-a" },
      await checked(3),
    );
    const again = await batches.create(
      { userId, type: "text", priority: 7, idempotencyKey: "k1", requestHash: "hash-a" },
      await checked(3),
    );
    expect(again.created).toBe(false);
    expect(again.batch.id).toBe(first.batch.id);
    await expect(
      batches.create(
        { userId, type: "text", priority: 7, idempotencyKey: "k1", requestHash: "hash-b" },
        await checked(3),
      ),
    ).rejects.toThrow(IdempotencyConflictError);
    expect(await db.job.count({ where: { userId } })).toBe(3);
  });

  it("releases items in order, counting them, and never the same item twice", async () => {
    const userId = await createUser();
    const { batch } = await batches.create({ userId, type: "text", priority: 7 }, await checked(10));
    const [first, second] = await Promise.all([
      batches.claimItems(batch.id, 4),
      batches.claimItems(batch.id, 4),
    ]);
    const ids = [...(first ?? []), ...(second ?? [])].map((item) => item.id);
    expect(new Set(ids).size).toBe(8);
    const rest = await batches.claimItems(batch.id, 10);
    expect(rest).toHaveLength(2);
    expect(await batches.claimItems(batch.id, 10)).toEqual([]);
    const stored = await batches.findForUser(userId, batch.id);
    expect(stored.dispatchedCount).toBe(10);
    expect(stored.dispatchCursor).toBe(10);
    expect(stored.startedAt).not.toBeNull();
    const [candidate] = (await batches.dispatchCandidates()).filter((entry) => entry.batchId === batch.id);
    expect(candidate).toMatchObject({ outstanding: 10, undispatched: 0, plan: "basic" });
  });
});
