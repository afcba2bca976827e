import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AccountRepository, createPrismaClient, type Database } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { createRedisConnection, JobQueues, QUEUE_CATALOG } from "@genq/queue";
import { QuotaLedger } from "@genq/quota";
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { deleteKeys, untilReady } from "./end-to-end-throughput.ts";
import { round } from "./stats.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** P4: one worker process, many jobs in flight on a slow provider. */
export interface IoEfficiencyResult {
  name: "io-efficiency";
  jobs: number;
  concurrency: number;
  providerLatencyMs: number;
  /** concurrency ÷ latency: what a worker that only waits could do. */
  idealJobsPerSecond: number;
  jobsPerSecond: number;
  /** jobsPerSecond ÷ idealJobsPerSecond. */
  ratio: number;
  /** Raw BullMQ, same Redis, concurrency and job count, a processor that only waits `latencyMs`. */
  bullmqJobsPerSecond: number;
  /** jobsPerSecond ÷ bullmqJobsPerSecond: goal P4. */
  bullmqRatio: number;
  /** The worker's RSS when idle (started, no jobs), and its peak while `concurrency` jobs ran. */
  idleRssMb: number;
  peakRssMb: number;
  rssPerInFlightJobKb: number;
  goal: { ratio: 0.7; rssPerInFlightJobKb: 50 };
}

/** Scale-out: jobs/s with 1, 2 and 4 worker processes. */
export interface ScaleOutResult {
  name: "scale-out";
  providerLatencyMs: number;
  concurrencyPerProcess: number;
  runs: Array<{
    processes: number;
    jobs: number;
    jobsPerSecond: number;
    speedup: number;
    efficiency: number;
  }>;
  /** Issue 13's S1: 4 processes at least 3.5× one. */
  goal: { speedup4: 3.5 };
}

/** A schema, a prefix, a user on an unlimited plan, and a way to put text jobs straight into the queue. */
interface Fixture {
  database: TestDatabase;
  db: Database;
  redis: Redis;
  queues: JobQueues;
  userId: string;
  prefix: string;
  storageDirectory: string;
  close(): Promise<void>;
}

async function createFixture(options: { redisUrl: string; databaseUrl: string }): Promise<Fixture> {
  const database = await createTestDatabase({ baseUrl: options.databaseUrl });
  const db = createPrismaClient({ connectionString: database.url });
  const redis = createRedisConnection({ url: options.redisUrl, role: "producer", connectionName: "bench" });
  redis.on("error", () => {});
  await untilReady(redis);
  const prefix = `bench-${randomBytes(5).toString("hex")}`;
  const queues = new JobQueues({ connection: redis, prefix });
  const { user } = await new AccountRepository({ db }).createUser({
    email: `bench-${randomBytes(4).toString("hex")}@example.com`,
    plan: "enterprise",
  });
  await new QuotaLedger({ db }).setUserLimits(user.id, { textTokenLimit: Number.MAX_SAFE_INTEGER });
  const storageDirectory = await mkdtemp(join(tmpdir(), "genq-bench-objects-"));
  return {
    database,
    db,
    redis,
    queues,
    userId: user.id,
    prefix,
    storageDirectory,
    async close() {
      await queues.close();
      await deleteKeys(redis, `${prefix}:*`).catch(() => {});
      redis.disconnect();
      await db.$disconnect();
      await database.drop();
      await rm(storageDirectory, { recursive: true, force: true });
    },
  };
}

/** What each seeded job holds, as admission would hold it (an upper bound of the mock's usage). */
const SEEDED_HOLD_TEXT_TOKENS = 1_000;

/**
 * Inserts `count` text jobs as the API admits them (committed rows, each with its
 * quota hold and output cap) and adds them to BullMQ in bulk, so the measurement is
 * the workers' alone.
 */
async function seedJobs(fixture: Fixture, count: number): Promise<void> {
  const chunk = 1_000;
  for (let start = 0; start < count; start += chunk) {
    const ids = Array.from({ length: Math.min(chunk, count - start) }, () => randomUUID());
    await fixture.db.job.createMany({
      data: ids.map((id) => ({
        id,
        userId: fixture.userId,
        type: "text" as const,
        priority: 5,
        input: { prompt: "benchmark", maxTokens: 16 },
        reservedOutputTokens: 16,
      })),
    });
    const period = `${new Date().toISOString().slice(0, 7)}-01`;
    await fixture.db.$executeRaw`
      INSERT INTO quota_reservations (job_id, user_id, period_start, text_tokens)
      SELECT unnest(${ids}::uuid[]), ${fixture.userId}::uuid, ${period}::date, ${SEEDED_HOLD_TEXT_TOKENS}`;
    await fixture.db.$executeRaw`
      INSERT INTO quota_usage AS q (user_id, period_start, kind, reserved)
      VALUES (${fixture.userId}::uuid, ${period}::date, 'text_tokens', ${ids.length * SEEDED_HOLD_TEXT_TOKENS})
      ON CONFLICT (user_id, period_start, kind) DO UPDATE SET reserved = q.reserved + EXCLUDED.reserved`;
    await fixture.queues.queue("text").addBulk(
      ids.map((id) => ({
        name: "text",
        data: { jobId: id },
        opts: {
          jobId: id,
          priority: 5,
          attempts: QUEUE_CATALOG.text.attempts,
          backoff: { type: "genq", delay: QUEUE_CATALOG.text.backoffMs },
          removeOnComplete: { age: 3_600, count: 1_000 },
          removeOnFail: { age: 24 * 3_600, count: 5_000 },
        },
      })),
    );
  }
}

/** Starts `apps/worker` as its own process; resolves once it logged that it is ready. */
async function spawnWorker(
  fixture: Fixture,
  options: { redisUrl: string; concurrency: number; latencyMs: number },
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: "production",
      DATABASE_URL: fixture.database.url,
      REDIS_URL: options.redisUrl,
      GENQ_QUEUE_PREFIX: fixture.prefix,
      GENQ_WORKER_QUEUES: "text",
      GENQ_TEXT_CONCURRENCY: String(options.concurrency),
      // One user runs the whole load: measure the system, not the per-tenant cap.
      GENQ_TENANT_CONCURRENCY: "0",
      // About one connection per 20 jobs in flight: each job runs ~6 short statements per latency period.
      GENQ_DATABASE_POOL_SIZE: String(Math.max(10, Math.ceil(options.concurrency / 20))),
      GENQ_DEFAULT_PROVIDER: "mock",
      GENQ_MOCK_ENABLED: "true",
      GENQ_MOCK_LATENCY_MS: String(options.latencyMs),
      GENQ_STORAGE_DRIVER: "local",
      GENQ_STORAGE_DIR: fixture.storageDirectory,
      GENQ_ASSET_RETENTION_DAYS: "0",
      GENQ_ADMIN_PASSWORD: "bench-operator-password",
      GENQ_STORAGE_SIGNING_SECRET: "bench-signing-secret-bench-signing-secret",
      LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("genq worker ready")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) =>
      reject(new Error(`worker exited with ${code} before it was ready:\n${output}`)),
    );
  });
  // Keep reading so a full pipe never blocks the worker.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/** Resident set size of a process, in bytes (Linux). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match === null ? Number.NaN : Number(match[1]) * 1_024;
}

/**
 * Jobs per second between the first claim and the last completion, from the rows'
 * own timestamps (so process start-up and polling are not counted). Fails if any
 * job did not complete.
 */
async function waitForAll(fixture: Fixture, jobs: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [completed, other] = await Promise.all([
      fixture.db.job.count({ where: { status: "completed" } }),
      fixture.db.job.count({ where: { status: { in: ["failed", "canceled"] } } }),
    ]);
    if (other > 0) throw new Error(`${other} jobs failed or were canceled`);
    if (completed >= jobs) break;
    if (Date.now() > deadline)
      throw new Error(`only ${completed} of ${jobs} jobs completed in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const span = await fixture.db.job.aggregate({ _min: { startedAt: true }, _max: { finishedAt: true } });
  const seconds = (span._max.finishedAt!.getTime() - span._min.startedAt!.getTime()) / 1_000;
  return jobs / seconds;
}

/**
 * P4 I/O efficiency: one worker process with concurrency 1,000 on a mock provider
 * that answers after 1 s. A worker that only waited would do 1,000 jobs/s; the
 * ratio says how much of that genq keeps. RSS is sampled every 50 ms from /proc.
 */
export async function benchIoEfficiency(options: {
  redisUrl: string;
  databaseUrl: string;
  jobs?: number;
  concurrency?: number;
  latencyMs?: number;
}): Promise<IoEfficiencyResult> {
  const concurrency = options.concurrency ?? 1_000;
  const latencyMs = options.latencyMs ?? 1_000;
  const jobs = options.jobs ?? 5 * concurrency;
  const fixture = await createFixture(options);
  let child: ChildProcess | undefined;
  try {
    child = await spawnWorker(fixture, { redisUrl: options.redisUrl, concurrency, latencyMs });
    const pid = child.pid!;
    // Idle: started, connected, nothing to do.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const idle = await rssOf(pid);
    let peak = idle;
    const sampler = setInterval(() => {
      rssOf(pid).then(
        (rss) => {
          peak = Math.max(peak, rss);
        },
        () => {},
      );
    }, 50);
    try {
      // All jobs are in the queue before the worker may take any, as in the raw BullMQ run.
      const queue = fixture.queues.queue("text");
      await queue.pause();
      await seedJobs(fixture, jobs);
      await queue.resume();
      const jobsPerSecond = await waitForAll(fixture, jobs, 120_000 + jobs * 20);
      const ideal = concurrency / (latencyMs / 1_000);
      const bullmq = await rawBullmqWaiting({ redisUrl: options.redisUrl, jobs, concurrency, latencyMs });
      return {
        name: "io-efficiency",
        jobs,
        concurrency,
        providerLatencyMs: latencyMs,
        idealJobsPerSecond: ideal,
        jobsPerSecond: round(jobsPerSecond, 1),
        ratio: round(jobsPerSecond / ideal),
        bullmqJobsPerSecond: round(bullmq, 1),
        bullmqRatio: round(jobsPerSecond / bullmq),
        idleRssMb: round(idle / 1_048_576, 1),
        peakRssMb: round(peak / 1_048_576, 1),
        rssPerInFlightJobKb: round((peak - idle) / 1_024 / concurrency, 1),
        goal: { ratio: 0.7, rssPerInFlightJobKb: 50 },
      };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    if (child !== undefined) await stopWorker(child);
    await fixture.close();
  }
}

/**
 * Scale-out: the same load on 1, 2 and 4 worker processes (each with the same
 * concurrency) against one Redis and one PostgreSQL, provider latency 200 ms by
 * default (`pnpm bench` passes 1 s, as goal S1 is stated).
 * Jobs per run grow with the processes so each run lasts about as long.
 */
export async function benchScaleOut(options: {
  redisUrl: string;
  databaseUrl: string;
  processes?: number[];
  concurrencyPerProcess?: number;
  latencyMs?: number;
  secondsPerRun?: number;
}): Promise<ScaleOutResult> {
  const concurrency = options.concurrencyPerProcess ?? 50;
  const latencyMs = options.latencyMs ?? 200;
  const perProcessIdeal = concurrency / (latencyMs / 1_000);
  const runs: ScaleOutResult["runs"] = [];
  for (const processes of options.processes ?? [1, 2, 4]) {
    const jobs = Math.round(perProcessIdeal * processes * (options.secondsPerRun ?? 8));
    const fixture = await createFixture(options);
    const children: ChildProcess[] = [];
    try {
      for (let index = 0; index < processes; index += 1) {
        children.push(await spawnWorker(fixture, { redisUrl: options.redisUrl, concurrency, latencyMs }));
      }
      await seedJobs(fixture, jobs);
      const jobsPerSecond = await waitForAll(fixture, jobs, 120_000 + jobs * 20);
      const single = runs[0]?.jobsPerSecond ?? jobsPerSecond;
      runs.push({
        processes,
        jobs,
        jobsPerSecond: round(jobsPerSecond, 1),
        speedup: round(jobsPerSecond / single, 2),
        efficiency: round(jobsPerSecond / single / processes, 2),
      });
    } finally {
      await Promise.all(children.map(stopWorker));
      await fixture.close();
    }
  }
  return {
    name: "scale-out",
    providerLatencyMs: latencyMs,
    concurrencyPerProcess: concurrency,
    runs,
    goal: { speedup4: 3.5 },
  };
}

/**
 * Raw BullMQ doing what P4's worker does without genq: `jobs` jobs added in bulk, one
 * worker with `concurrency` whose processor only waits `latencyMs`; jobs per second
 * from the first start to the last completion.
 */
async function rawBullmqWaiting(options: {
  redisUrl: string;
  jobs: number;
  concurrency: number;
  latencyMs: number;
}): Promise<number> {
  const prefix = `bench-wait-${randomBytes(5).toString("hex")}`;
  const producer = createRedisConnection({ url: options.redisUrl, role: "producer" });
  const consumer = createRedisConnection({ url: options.redisUrl, role: "worker" });
  producer.on("error", () => {});
  consumer.on("error", () => {});
  await untilReady(producer);
  const queue = new Queue("text", { connection: producer, prefix, skipWaitingForReady: true });
  let worker: Worker | undefined;
  try {
    for (let start = 0; start < options.jobs; start += 1_000) {
      const ids = Array.from({ length: Math.min(1_000, options.jobs - start) }, () => randomUUID());
      await queue.addBulk(
        ids.map((id) => ({ name: "text", data: { jobId: id }, opts: { jobId: id, priority: 5 } })),
      );
    }
    let first = 0;
    let completed = 0;
    const done = new Promise<void>((resolve) => {
      worker = new Worker(
        "text",
        async () => {
          if (first === 0) first = performance.now();
          await new Promise((wait) => setTimeout(wait, options.latencyMs));
        },
        { connection: consumer, prefix, concurrency: options.concurrency },
      );
      worker.on("error", () => {});
      worker.on("completed", () => {
        completed += 1;
        if (completed === options.jobs) resolve();
      });
    });
    await done;
    return options.jobs / ((performance.now() - first) / 1_000);
  } finally {
    await worker?.close();
    await queue.close();
    await deleteKeys(producer, `${prefix}:*`).catch(() => {});
    producer.disconnect();
    consumer.disconnect();
  }
}
