// Shared set-up for this package's integration tests (not exported by the package).
import { randomBytes } from "node:crypto";
import {
  AccountRepository,
  createPrismaClient,
  type Database,
  type JobRecord,
  JobRepository,
} from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "./job-lifecycle.ts";

/** A migrated schema of its own, with the repositories and a lifecycle on it. */
export interface LifecycleTestContext {
  db: Database;
  jobs: JobRepository;
  accounts: AccountRepository;
  lifecycle: JobLifecycle;
  createUser(): Promise<string>;
  /** Claims a job as a worker does; null when the claim found nothing to run. */
  claim(jobId: string): Promise<JobRecord | null>;
  /** Holds `textTokens` for a job, as an admission or a worker's reservation does. */
  hold(jobId: string, userId: string, textTokens: number): Promise<void>;
  /** A user's text-token counters this month. */
  textQuota(userId: string): Promise<{ used: number; reserved: number }>;
  close(): Promise<void>;
}

export async function createLifecycleTestContext(
  options: { maxConnections?: number } = {},
): Promise<LifecycleTestContext> {
  const database: TestDatabase = await createTestDatabase();
  const db = createPrismaClient({
    connectionString: database.url,
    maxConnections: options.maxConnections ?? 4,
  });
  const accounts = new AccountRepository({ db });
  const lifecycle = new JobLifecycle({ db });
  const now = new Date();
  const period = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}-01`;
  return {
    db,
    jobs: new JobRepository({ db }),
    accounts,
    lifecycle,
    async createUser() {
      const { user } = await accounts.createUser({
        email: `${randomBytes(6).toString("hex")}@example.com`,
        plan: "basic",
      });
      return user.id;
    },
    async claim(jobId) {
      const outcome = await lifecycle.claim(jobId);
      return outcome.outcome === "claimed" ? outcome.job : null;
    },
    async hold(jobId, userId, textTokens) {
      await db.$executeRaw`
        INSERT INTO quota_usage (user_id, period_start, kind, reserved)
        VALUES (${userId}::uuid, ${period}::date, 'text_tokens', ${textTokens})
        ON CONFLICT (user_id, period_start, kind) DO UPDATE SET reserved = quota_usage.reserved + EXCLUDED.reserved`;
      await db.$executeRaw`
        INSERT INTO quota_reservations (job_id, user_id, period_start, text_tokens)
        VALUES (${jobId}::uuid, ${userId}::uuid, ${period}::date, ${textTokens})`;
    },
    async textQuota(userId) {
      const row = await db.quotaUsage.findFirst({ where: { userId, kind: "text_tokens" } });
      return { used: Number(row?.used ?? 0n), reserved: Number(row?.reserved ?? 0n) };
    },
    async close() {
      await db.$disconnect();
      await database.drop();
    },
  };
}
