import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "@genq/api";
import { AccountRepository, createPrismaClient, type Database } from "@genq/db";
import { createTestDatabase } from "@genq/db/testing";
import { GenqMetrics } from "@genq/metrics";
import { createRedisConnection, JobQueues, QUEUE_CATALOG } from "@genq/queue";
import { QuotaLedger } from "@genq/quota";
import { startWorker } from "@genq/worker";
import { loadWorkerEnv } from "@genq/worker/env";
import { Queue, Worker } from "bullmq";
import Fastify, { type FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { round } from "./stats.ts";

/** The end-to-end throughput figures of one run. */
export interface EndToEndResult {
  name: "end-to-end";
  jobs: number;
  /** Worker concurrency of both systems. */
  concurrency: number;
  /** Submissions in flight at once, for both systems. */
  submitConcurrency: number;
  /** HTTP submit (listening server, fetch) to completed-and-persisted in Postgres. */
  genqJobsPerSecond: number;
  /** `queue.add` to a BullMQ worker with an empty processor, on the same Redis. */
  baselineJobsPerSecond: number;
  ratio: number;
  /**
   * The same load generator posting to a bare Fastify route that only does
   * `queue.add`, and a BullMQ worker with an empty processor: what HTTP alone costs
   * on this machine, where the load generator shares the cores.
   */
  httpBaselineJobsPerSecond: number;
  httpRatio: number;
  goal: 0.3;
}

/** A small text job, the same body for every benchmark. */
export const TEXT_JOB_BODY = JSON.stringify({ type: "text", input: { prompt: "benchmark", maxTokens: 16 } });

/** The options genq's queues give a text job (`JobQueues.enqueue`), so the baseline adds alike. */
export function baselineJobOptions(id: string) {
  return {
    jobId: id,
    priority: 5,
    attempts: QUEUE_CATALOG.text.attempts,
    backoff: { type: "fixed", delay: QUEUE_CATALOG.text.backoffMs },
    removeOnComplete: { age: 3_600, count: 1_000 },
    removeOnFail: { age: 24 * 3_600, count: 5_000 },
  };
}

const CONCURRENCY = 100;
const SUBMIT_CONCURRENCY = 50;
const WARM_UP_JOBS = 200;

/** A listening genq API on a temporary schema and queue prefix, with one user. */
export interface BenchApi {
  /** `http://127.0.0.1:<port>` */
  url: string;
  apiKey: string;
  prefix: string;
  databaseUrl: string;
  db: Database;
  /** Closes the server and connections, deletes the prefix's keys and drops the schema. */
  close(): Promise<void>;
}

/**
 * Starts the API as `apps/api/src/main.ts` wires it (quota check, metrics, no
 * submit rate limit), minus request logging, which would time stdout instead.
 * The user is on the enterprise plan with unlimited text tokens, so no
 * submission is refused for quota.
 */
export async function startBenchApi(options: { redisUrl: string; databaseUrl: string }): Promise<BenchApi> {
  const database = await createTestDatabase({ baseUrl: options.databaseUrl });
  const prefix = `bench-${randomBytes(5).toString("hex")}`;
  const db = createPrismaClient({ connectionString: database.url });
  const redis = createRedisConnection({
    url: options.redisUrl,
    role: "producer",
    connectionName: "bench-api",
  });
  redis.on("error", () => {});
  const queues = new JobQueues({ connection: redis, prefix });
  const close = async () => {
    await queues.close();
    await deleteKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
    await db.$disconnect();
    await database.drop();
  };
  try {
    await untilReady(redis);
    const quota = new QuotaLedger({ db });
    const { user, apiKey } = await new AccountRepository({ db }).createUser({
      email: `bench-${randomBytes(4).toString("hex")}@example.com`,
      plan: "enterprise",
    });
    await quota.setUserLimits(user.id, { textTokenLimit: Number.MAX_SAFE_INTEGER });
    const app = await buildApp({
      db,
      redis,
      queues,
      quota,
      metrics: new GenqMetrics({ process: "api", defaultMetrics: false }),
      logger: false,
      docs: false,
      admin: { user: "operator", password: randomBytes(12).toString("hex") },
      // As GENQ_API_KEY_CACHE_TTL_MS's default in production.
      apiKeyCacheTtlMs: 30_000,
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = app.server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      apiKey,
      prefix,
      databaseUrl: database.url,
      db,
      async close() {
        await app.close();
        await settle();
        await close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * P1: jobs per second from the first HTTP submit until every job is completed
 * and its result persisted in Postgres, with one in-process worker on the
 * zero-latency mock provider, ÷ raw BullMQ on the same Redis: `queue.add` with
 * the same options and the same number in flight, and a worker with the same
 * concurrency whose processor does nothing, until all are completed.
 *
 * Submissions go over a real socket (`fetch` to a listening server), 50 in
 * flight; API, worker and load all share this one process, as do the
 * baseline's producer and worker. Each system first runs 200 jobs to warm up.
 */
export async function benchEndToEnd(options: {
  redisUrl: string;
  databaseUrl: string;
  jobs: number;
}): Promise<EndToEndResult> {
  const genqJobsPerSecond = await measureGenq(options);
  const baselineJobsPerSecond = await measureBaseline(options, false);
  const httpBaselineJobsPerSecond = await measureBaseline(options, true);
  return {
    name: "end-to-end",
    jobs: options.jobs,
    concurrency: CONCURRENCY,
    submitConcurrency: SUBMIT_CONCURRENCY,
    genqJobsPerSecond: round(genqJobsPerSecond, 1),
    baselineJobsPerSecond: round(baselineJobsPerSecond, 1),
    ratio: round(genqJobsPerSecond / baselineJobsPerSecond),
    httpBaselineJobsPerSecond: round(httpBaselineJobsPerSecond, 1),
    httpRatio: round(genqJobsPerSecond / httpBaselineJobsPerSecond),
    goal: 0.3,
  };
}

async function measureGenq(options: {
  redisUrl: string;
  databaseUrl: string;
  jobs: number;
}): Promise<number> {
  const api = await startBenchApi(options);
  const storageDirectory = await mkdtemp(join(tmpdir(), "genq-bench-objects-"));
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    const environment = {
      DATABASE_URL: api.databaseUrl,
      REDIS_URL: options.redisUrl,
      GENQ_QUEUE_PREFIX: api.prefix,
      GENQ_WORKER_QUEUES: "text",
      GENQ_TEXT_CONCURRENCY: String(CONCURRENCY),
      // One user runs the whole load: measure the system, not the per-tenant cap.
      GENQ_TENANT_CONCURRENCY: "0",
      GENQ_MOCK_LATENCY_MS: "0",
      GENQ_STORAGE_DRIVER: "local",
      GENQ_STORAGE_DIR: storageDirectory,
      GENQ_ASSET_RETENTION_DAYS: "0",
      LOG_LEVEL: "warn",
    };
    worker = await startWorker(loadWorkerEnv(environment), pino({ level: "silent" }), environment);

    const submit = async () => {
      const response = await fetch(`${api.url}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${api.apiKey}`, "content-type": "application/json" },
        body: TEXT_JOB_BODY,
      });
      const body = await response.text();
      if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${body}`);
    };
    const completed = async () => {
      const failed = await api.db.job.count({ where: { status: { in: ["failed", "canceled"] } } });
      if (failed > 0) throw new Error(`${failed} genq jobs failed or were canceled`);
      return api.db.job.count({ where: { status: "completed" } });
    };

    await runConcurrently(WARM_UP_JOBS, SUBMIT_CONCURRENCY, submit);
    await waitUntil(async () => (await completed()) >= WARM_UP_JOBS, timeoutFor(WARM_UP_JOBS));
    const started = performance.now();
    await runConcurrently(options.jobs, SUBMIT_CONCURRENCY, submit);
    await waitUntil(async () => (await completed()) >= WARM_UP_JOBS + options.jobs, timeoutFor(options.jobs));
    return options.jobs / ((performance.now() - started) / 1_000);
  } finally {
    await worker?.close();
    await api.close();
    await rm(storageDirectory, { recursive: true, force: true });
  }
}

async function measureBaseline(
  options: { redisUrl: string; jobs: number },
  overHttp: boolean,
): Promise<number> {
  const prefix = `bench-bullmq-${randomBytes(5).toString("hex")}`;
  const producer = createRedisConnection({ url: options.redisUrl, role: "producer" });
  const consumer = createRedisConnection({ url: options.redisUrl, role: "worker" });
  producer.on("error", () => {});
  consumer.on("error", () => {});
  let queue: Queue | undefined;
  let worker: Worker | undefined;
  let server: FastifyInstance | undefined;
  try {
    // A producer connection does not queue commands while it connects, and BullMQ sends some at once.
    await untilReady(producer);
    const textQueue = new Queue("text", { connection: producer, prefix, skipWaitingForReady: true });
    queue = textQueue;
    textQueue.on("error", () => {});
    let completed = 0;
    let failed = 0;
    worker = new Worker("text", async () => {}, { connection: consumer, prefix, concurrency: CONCURRENCY });
    worker.on("error", () => {});
    worker.on("completed", () => {
      completed += 1;
    });
    worker.on("failed", () => {
      failed += 1;
    });
    await worker.waitUntilReady();
    const addDirectly = async () => {
      const id = randomUUID();
      await textQueue.add("text", { jobId: id }, baselineJobOptions(id));
    };
    let add = addDirectly;
    if (overHttp) {
      const app = Fastify({ logger: false });
      server = app;
      app.post("/v1/jobs", async (_request, reply) => {
        const id = randomUUID();
        await textQueue.add("text", { jobId: id }, baselineJobOptions(id));
        return reply.status(202).send({ id, status: "queued" });
      });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const { port } = app.server.address() as AddressInfo;
      add = async () => {
        const response = await fetch(`http://127.0.0.1:${port}/v1/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: TEXT_JOB_BODY,
        });
        await response.text();
        if (response.status !== 202) throw new Error(`bare route answered ${response.status}`);
      };
    }
    const done = (target: number) => {
      if (failed > 0) throw new Error(`${failed} baseline jobs failed`);
      return completed >= target;
    };
    await runConcurrently(WARM_UP_JOBS, SUBMIT_CONCURRENCY, add);
    await waitUntil(() => done(WARM_UP_JOBS), timeoutFor(WARM_UP_JOBS));
    const started = performance.now();
    await runConcurrently(options.jobs, SUBMIT_CONCURRENCY, add);
    await waitUntil(() => done(WARM_UP_JOBS + options.jobs), timeoutFor(options.jobs));
    return options.jobs / ((performance.now() - started) / 1_000);
  } finally {
    await server?.close();
    await worker?.close();
    await queue?.close();
    if (producer.status === "ready") await deleteKeys(producer, `${prefix}:*`).catch(() => {});
    producer.disconnect();
    consumer.disconnect();
  }
}

/** Runs `task` `count` times with at most `concurrency` in flight; the first failure stops it. */
async function runConcurrently(count: number, concurrency: number, task: () => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next += 1;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/** A generous limit (at least 100 jobs/s), so a stuck run fails instead of hanging. */
function timeoutFor(jobs: number): number {
  return 30_000 + jobs * 10;
}

/** Polls `condition` every 10 ms until it holds, or rejects after `timeoutMs`. */
async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Waits for handlers still running after the server closed: when a load
 * generator exits mid-request its sockets close at once, but the handlers of
 * those requests go on to insert and enqueue, and would recreate deleted keys.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1_000));
}

/** Resolves once `redis` is connected. */
export async function untilReady(redis: Redis): Promise<void> {
  if (redis.status !== "ready") await once(redis, "ready");
}

/** Deletes the keys matching `pattern` with SCAN, never another prefix's. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}
