import { randomBytes, randomUUID } from "node:crypto";
import { AccountRepository, createPrismaClient } from "@genq/db";
import { createTestDatabase } from "@genq/db/testing";
import { QuotaLedger } from "@genq/quota";
import { percentile, round } from "./stats.ts";

/** The quota-overhead figures of one run, in milliseconds. */
export interface QuotaOverheadResult {
  name: "quota-overhead";
  jobs: number;
  /** One job's `reserve` (a transaction) plus its `settle` (one statement). */
  reserveSettle: { p50: number; p99: number };
  /** Two `SELECT 1` round trips on the same connection: the floor any two calls pay. */
  baseline: { p50: number; p99: number };
  goal: { p99: 1 };
}

const WARM_UP_JOBS = 200;

/**
 * What the quota ledger adds to every job: `reserve` before the provider call and
 * `settle` after it, against a user with room to spare, on one pooled connection
 * in a temporary schema. The baseline is a pair of trivial round trips on the same
 * connection, measured alternately in the same run.
 */
export async function benchQuotaOverhead(options: {
  databaseUrl: string;
  jobs: number;
}): Promise<QuotaOverheadResult> {
  const database = await createTestDatabase({ baseUrl: options.databaseUrl });
  const db = createPrismaClient({ connectionString: database.url, maxConnections: 1 });
  try {
    const { user } = await new AccountRepository({ db }).createUser({
      email: `bench-${randomBytes(4).toString("hex")}@example.com`,
      plan: "enterprise",
    });
    const ledger = new QuotaLedger({ db });
    // Room for every job, so no reservation is refused and each one settles.
    await ledger.setUserLimits(user.id, { textTokenLimit: Number.MAX_SAFE_INTEGER });
    const jobIds = Array.from({ length: WARM_UP_JOBS + options.jobs }, () => randomUUID());
    await db.job.createMany({
      data: jobIds.map((id) => ({ id, userId: user.id, type: "text", priority: 5, input: {} })),
    });

    const reserveAndSettle = async (jobId: string) => {
      await ledger.reserve({ jobId, userId: user.id, textTokens: 4_096 });
      await ledger.settle({ jobId, textTokens: 1_024, images: 0, costMicroUsd: 150 });
    };
    const baseline = async () => {
      await db.$queryRaw`SELECT 1`;
      await db.$queryRaw`SELECT 1`;
    };

    for (const jobId of jobIds.slice(0, WARM_UP_JOBS)) {
      await baseline();
      await reserveAndSettle(jobId);
    }
    const ledgerTimes: number[] = [];
    const baselineTimes: number[] = [];
    for (const jobId of jobIds.slice(WARM_UP_JOBS)) {
      let started = performance.now();
      await baseline();
      baselineTimes.push(performance.now() - started);
      started = performance.now();
      await reserveAndSettle(jobId);
      ledgerTimes.push(performance.now() - started);
    }
    return {
      name: "quota-overhead",
      jobs: options.jobs,
      reserveSettle: { p50: round(percentile(ledgerTimes, 50)), p99: round(percentile(ledgerTimes, 99)) },
      baseline: { p50: round(percentile(baselineTimes, 50)), p99: round(percentile(baselineTimes, 99)) },
      goal: { p99: 1 },
    };
  } finally {
    await db.$disconnect();
    await database.drop();
  }
}
