// 200 jobs of one user reserve at once, through four clients (forty connections),
// while a sampler reads the counters every few milliseconds: exactly the 50 that
// fit are held, and used + reserved never exceeds the limit.
import { createPrismaClient, type Database } from "@genq/db";
import { afterAll, beforeAll, expect, it } from "vitest";
import { isQuotaExceededError } from "./quota-exceeded-error.ts";
import { QuotaLedger, type ReserveResult } from "./quota-ledger.ts";
import { createLedgerTestContext, type LedgerTestContext, usageRow } from "./test-fixtures.ts";

const CLIENTS = 4;
const JOBS = 200;
const PER_JOB = 2_000;
const LIMIT = 50 * PER_JOB;

let context: LedgerTestContext;
let clients: Database[] = [];

beforeAll(async () => {
  context = await createLedgerTestContext();
  clients = Array.from({ length: CLIENTS }, () =>
    createPrismaClient({ connectionString: context.database.url, maxConnections: 10 }),
  );
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.$disconnect()));
  await context?.close();
});

it("holds exactly the reservations that fit when 200 jobs reserve at once", { timeout: 60_000 }, async () => {
  const userId = await context.createUser("basic");
  await context.ledger().setUserLimits(userId, { textTokenLimit: LIMIT });
  const jobIds: string[] = [];
  for (let index = 0; index < JOBS; index += 1) jobIds.push(await context.createJob(userId));
  const ledgers = clients.map((db) => new QuotaLedger({ db }));
  // Warm every pool up, so the run measures contention rather than connecting.
  await Promise.all(
    clients.map((db) => Promise.all(Array.from({ length: 10 }, () => db.$queryRaw`SELECT 1`))),
  );

  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const row = await usageRow(context.db, userId, "text_tokens", currentPeriod());
      if (row !== null) samples.push(row.used + row.reserved);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();

  const results = await Promise.allSettled(
    jobIds.map((jobId, index) => ledgers[index % CLIENTS]!.reserve({ jobId, userId, textTokens: PER_JOB })),
  );
  sampling = false;
  await sampler;

  const held = results.filter(
    (result): result is PromiseFulfilledResult<ReserveResult> =>
      result.status === "fulfilled" && result.value.outcome === "reserved",
  );
  const refused = results.filter(
    (result): result is PromiseRejectedResult =>
      result.status === "rejected" && isQuotaExceededError(result.reason),
  );
  expect(held).toHaveLength(50);
  expect(refused).toHaveLength(150);
  for (const { reason } of refused) {
    expect(reason.details).toMatchObject({ kind: "text_tokens", limit: LIMIT, requested: PER_JOB });
    expect(reason.details.used + reason.details.reserved + PER_JOB).toBeGreaterThan(LIMIT);
  }

  expect(samples.length).toBeGreaterThan(0);
  expect(Math.max(...samples)).toBeLessThanOrEqual(LIMIT);
  expect(await usageRow(context.db, userId, "text_tokens", currentPeriod())).toEqual({
    used: 0,
    reserved: LIMIT,
  });
  // The counters agree with the reservation rows: one per job that fit, none for the others.
  const [rows] = await context.db.$queryRaw<Array<{ count: number; total: bigint }>>`
    SELECT count(*)::int AS count, coalesce(sum(text_tokens), 0)::bigint AS total
      FROM quota_reservations WHERE user_id = ${userId}::uuid AND status = 'reserved'`;
  expect(rows).toEqual({ count: 50, total: BigInt(LIMIT) });
});

it("keeps used + reserved within the limit while jobs settle and release concurrently", {
  timeout: 60_000,
}, async () => {
  const userId = await context.createUser("basic");
  await context.ledger().setUserLimits(userId, { textTokenLimit: LIMIT });
  const jobIds: string[] = [];
  for (let index = 0; index < JOBS; index += 1) jobIds.push(await context.createJob(userId));
  const ledgers = clients.map((db) => new QuotaLedger({ db }));

  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const row = await usageRow(context.db, userId, "text_tokens", currentPeriod());
      if (row !== null) samples.push(row.used + row.reserved);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();

  // Forty lanes of five jobs each, so reservations, settlements and releases
  // interleave: every third job fails (release), the others use a quarter of what
  // they reserved (settle), and later jobs find room again.
  const LANES = 40;
  const runJob = async (jobId: string, index: number) => {
    const ledger = ledgers[index % CLIENTS]!;
    try {
      await ledger.reserve({ jobId, userId, textTokens: PER_JOB });
    } catch (error) {
      if (isQuotaExceededError(error)) return { jobId, charged: 0, held: false };
      throw error;
    }
    if (index % 3 === 0) {
      await ledger.release(jobId);
      return { jobId, charged: 0, held: true };
    }
    await ledger.settle({ jobId, textTokens: PER_JOB / 4, images: 0, costMicroUsd: 0 });
    return { jobId, charged: PER_JOB / 4, held: true };
  };
  const lanes = await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      const results: Array<{ jobId: string; charged: number; held: boolean }> = [];
      for (let index = lane; index < JOBS; index += LANES) results.push(await runJob(jobIds[index]!, index));
      return results;
    }),
  );
  const outcomes = lanes.flat();
  sampling = false;
  await sampler;

  expect(Math.max(...samples)).toBeLessThanOrEqual(LIMIT);
  const charged = outcomes.reduce((sum, outcome) => sum + outcome.charged, 0);
  expect(outcomes.filter((outcome) => outcome.held).length).toBeGreaterThan(50);
  expect(await usageRow(context.db, userId, "text_tokens", currentPeriod())).toEqual({
    used: charged,
    reserved: 0,
  });
});

function currentPeriod(): string {
  return new Date().toISOString().slice(0, 7).concat("-01");
}
