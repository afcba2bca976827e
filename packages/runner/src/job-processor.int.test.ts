import { randomBytes } from "node:crypto";
import type { QueuedJobPayload } from "@genq/core";
import { AccountRepository, createPrismaClient, type Database, JobRepository } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { buildRouterConfig, defaultProvidersFile, ProviderRouter, RedisRouterState } from "@genq/providers";
import { createRedisConnection } from "@genq/queue";
import { QuotaLedger, type ReserveRequest, resolvePlans } from "@genq/quota";
import { type Job, Queue } from "bullmq";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { JobProcessor } from "./job-processor.ts";

let database: TestDatabase;
let db: Database;
let redis: Redis;
let jobs: JobRepository;
let lifecycle: JobLifecycle;
let accounts: AccountRepository;
let ledger: QuotaLedger;
let router: ProviderRouter;
let queue: Queue<QueuedJobPayload>;
/** What the processor asked the ledger to reserve (the real ledger does the work). */
let reserved: ReserveRequest[];

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  redis = createRedisConnection({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", role: "producer" });
  redis.on("error", () => {});
  jobs = new JobRepository({ db });
  lifecycle = new JobLifecycle({ db });
  accounts = new AccountRepository({ db });
  ledger = new QuotaLedger({ db, plans: resolvePlans(undefined) });
  const config = buildRouterConfig(defaultProvidersFile({ defaultProvider: "mock", mock: {} }), {
    source: "test",
  });
  const prefix = `t${randomBytes(5).toString("hex")}`;
  router = new ProviderRouter({
    config: () => config,
    state: new RedisRouterState({ redis, prefix, breaker: () => config.breaker }),
  });
});

beforeEach(() => {
  reserved = [];
  queue = new Queue("genq-text", { connection: redis, prefix: `t${randomBytes(5).toString("hex")}` });
});

afterEach(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
});

afterAll(async () => {
  redis?.disconnect();
  await db?.$disconnect();
  await database?.drop();
});

function processor(options: { attemptTimeoutMs?: number } = {}): JobProcessor {
  return new JobProcessor({
    lifecycle,
    router,
    logger: pino({ level: "silent" }),
    quota: {
      reserve: (request) => {
        reserved.push(request);
        return ledger.reserve(request);
      },
    },
    attemptTimeoutMs: options.attemptTimeoutMs ?? 10_000,
  });
}

/** A text job in Postgres, and its BullMQ delivery. */
async function textJob(input: Record<string, unknown>, attempts = 3) {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan: "basic",
  });
  const { job } = await jobs.create({ userId: user.id, type: "text", priority: 2, input });
  const delivery: Job<QueuedJobPayload> = await queue.add("run", { jobId: job.id }, { attempts });
  return { userId: user.id, jobId: job.id, delivery };
}

/** A long prompt: the mock answers with more tokens than any cap below. */
const PROMPT = "tell me everything about ".concat("queues and workers and locks ".repeat(40));

describe("JobProcessor on the real lifecycle", () => {
  it("runs a job that holds its admission reservation on that hold: no reserve, its reserved output cap sent", async () => {
    const { userId, jobId, delivery } = await textJob({ prompt: PROMPT, maxTokens: 400 });
    // Admission: the hold and the output cap it fixed.
    await db.job.update({ where: { id: jobId }, data: { reservedOutputTokens: 5 } });
    await ledger.reserve({ jobId, userId, textTokens: 1_000, costMicroUsd: 0 });

    await expect(processor().process(delivery, "token")).resolves.toEqual({ status: "completed" });

    expect(reserved).toEqual([]);
    const job = await jobs.find(jobId);
    expect(job?.status).toBe("completed");
    expect(job?.outputTokens).toBeLessThanOrEqual(5);
    expect(job?.result).toMatchObject({ finishReason: "length" });
    const reservation = await db.quotaReservation.findUnique({ where: { jobId } });
    expect(reservation?.status).toBe("settled");
  });

  it("reserves the worst case itself for a job that holds nothing, and sends the job's own cap", async () => {
    const { jobId, delivery } = await textJob({ prompt: PROMPT, maxTokens: 40 });

    await expect(processor().process(delivery, "token")).resolves.toEqual({ status: "completed" });

    expect(reserved).toHaveLength(1);
    expect(reserved[0]).toMatchObject({ jobId });
    const job = await jobs.find(jobId);
    expect(job?.outputTokens).toBeGreaterThan(5);
    expect(job?.outputTokens).toBeLessThanOrEqual(40);
    expect((await db.quotaReservation.findUnique({ where: { jobId } }))?.status).toBe("settled");
  });

  it("fails a job whose only attempt runs out of time as a timeout, and the failure releases the hold", async () => {
    const { jobId, delivery } = await textJob(
      { prompt: "slow", providerOptions: { mock: { latencyMs: 5_000 } } },
      1,
    );
    const started = Date.now();

    await expect(processor({ attemptTimeoutMs: 200 }).process(delivery, "token")).rejects.toMatchObject({
      code: "timeout",
    });

    expect(Date.now() - started).toBeLessThan(3_000);
    const job = await jobs.find(jobId);
    expect(job).toMatchObject({ status: "failed", errorCode: "timeout" });
    expect((await db.quotaReservation.findUnique({ where: { jobId } }))?.status).toBe("released");
  });

  it("aborts a running attempt canceled through cancel(), and settles the job canceled", async () => {
    const { userId, jobId, delivery } = await textJob({
      prompt: "slow",
      providerOptions: { mock: { latencyMs: 20_000 } },
    });
    const running = processor();
    const outcome = running.process(delivery, "token");
    await waitFor(async () => (await jobs.find(jobId))?.status === "active");
    const started = Date.now();
    await lifecycle.cancel(userId, jobId);
    expect(running.cancel(jobId)).toBe(true);

    await expect(outcome).resolves.toEqual({ status: "canceled" });

    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await jobs.find(jobId))?.status).toBe("canceled");
    expect(running.cancel(jobId)).toBe(false);
  });

  it("takes no abort signal from BullMQ, which then allocates no controller per job (it checks the arity)", () => {
    expect(processor().process.length).toBeLessThan(3);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
