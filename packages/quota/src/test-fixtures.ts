// Shared set-up for this package's integration tests (not exported by the package).
import { randomBytes } from "node:crypto";
import { AccountRepository, createPrismaClient, type Database, JobRepository, type Plan } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { QuotaLedger, type QuotaLedgerOptions } from "./quota-ledger.ts";

/** A migrated schema of its own, with repositories and a clock tests can move. */
export interface LedgerTestContext {
  database: TestDatabase;
  db: Database;
  accounts: AccountRepository;
  jobs: JobRepository;
  lifecycle: JobLifecycle;
  /** Claims a job as a worker does; null when there was nothing to run. */
  claim(jobId: string): Promise<{ attempts: number } | null>;
  clock: { now: Date };
  /** A ledger on {@link LedgerTestContext.db} reading {@link LedgerTestContext.clock}. */
  ledger(options?: Omit<QuotaLedgerOptions, "db" | "now">): QuotaLedger;
  createUser(plan?: Plan): Promise<string>;
  createJob(userId: string, type?: "text" | "image"): Promise<string>;
  close(): Promise<void>;
}

export async function createLedgerTestContext(
  options: { maxConnections?: number } = {},
): Promise<LedgerTestContext> {
  const database = await createTestDatabase();
  const db = createPrismaClient({
    connectionString: database.url,
    maxConnections: options.maxConnections ?? 4,
  });
  const accounts = new AccountRepository({ db });
  const jobs = new JobRepository({ db });
  const lifecycle = new JobLifecycle({ db });
  const clock = { now: new Date("2026-11-15T12:00:00.000Z") };
  return {
    database,
    db,
    accounts,
    jobs,
    lifecycle,
    async claim(jobId) {
      const outcome = await lifecycle.claim(jobId);
      return outcome.outcome === "claimed" ? outcome.job : null;
    },
    clock,
    ledger: (ledgerOptions = {}) => new QuotaLedger({ db, now: () => clock.now, ...ledgerOptions }),
    async createUser(plan = "basic") {
      const { user } = await accounts.createUser({
        email: `${randomBytes(6).toString("hex")}@example.com`,
        plan,
      });
      return user.id;
    },
    async createJob(userId, type = "text") {
      const { job } = await jobs.create({ userId, type, priority: 5, input: { prompt: "hello" } });
      return job.id;
    },
    async close() {
      await db.$disconnect();
      await database.drop();
    },
  };
}

/** The raw counters of one user, kind and month. */
export async function usageRow(
  db: Database,
  userId: string,
  kind: string,
  periodStart = "2026-11-01",
): Promise<{ used: number; reserved: number } | null> {
  const [row] = await db.$queryRaw<Array<{ used: bigint; reserved: bigint }>>`
    SELECT used, reserved FROM quota_usage
     WHERE user_id = ${userId}::uuid AND kind = ${kind} AND period_start = ${periodStart}::date`;
  return row === undefined ? null : { used: Number(row.used), reserved: Number(row.reserved) };
}
