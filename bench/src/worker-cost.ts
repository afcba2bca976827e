import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRedisConnection } from "@genq/queue";
import { startWorker } from "@genq/worker";
import { loadWorkerEnv } from "@genq/worker/env";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { pino } from "pino";
import { type ProfileSummary, startCpuProfile } from "./cpu-profile.ts";
import {
  baselineJobOptions,
  deleteKeys,
  startBenchApi,
  TEXT_JOB_BODY,
  untilReady,
} from "./end-to-end-throughput.ts";
import { round } from "./stats.ts";

/** P6: what one job costs the worker: CPU, SQL statements and transactions, Redis commands. */
export interface WorkerCostResult {
  name: "worker-cost";
  jobs: number;
  concurrency: number;
  genq: PerJobCost;
  /** Raw BullMQ with an empty processor, same options and concurrency. */
  baseline: PerJobCost;
  goal: { cpuMsPerJob: 1; sqlRoundTripsPerJob: 3 };
  /** With GENQ_BENCH_PROFILE set: where the worker's CPU went while it drained the queue. */
  profile?: ProfileSummary & { file: string };
}

/** Per-job figures of one drained queue. */
export interface PerJobCost {
  /** Process CPU (user + system) while the worker drained the queue, per job. */
  cpuMsPerJob: number;
  /** `pg` queries sent (each is one round trip; BEGIN and COMMIT count), per job. */
  sqlRoundTripsPerJob: number;
  /** Of those, transactions begun, per job. */
  transactionsPerJob: number;
  /** ioredis commands sent (a Lua script is one), per job. */
  redisCommandsPerJob: number;
  /** The SQL statements sent most, per job, by prepared name (else their first words). */
  topStatements: string[];
  /**
   * The commands that cost the most, per job, e.g. `evalsha(text:wait) 1.02`: scripts
   * are named by their first key, without the prefix and ids, so each script shows apart.
   */
  topRedisCommands: string[];
  jobsPerSecond: number;
}

const CONCURRENCY = 100;

/**
 * Counts what the worker sends while it drains `jobs` text jobs submitted
 * beforehand (through the real API, so the rows and queue entries are what
 * production makes), on the zero-latency mock. Submission happens before the
 * counters start, so only the worker's side is counted. The counters wrap
 * `pg.Client#query` and `Redis#sendCommand` in this process.
 */
export async function benchWorkerCost(options: {
  redisUrl: string;
  databaseUrl: string;
  jobs: number;
}): Promise<WorkerCostResult> {
  const { cost: genq, profile } = await measureGenq(options);
  const baseline = await measureBaseline(options);
  return {
    name: "worker-cost",
    jobs: options.jobs,
    concurrency: CONCURRENCY,
    genq,
    baseline,
    goal: { cpuMsPerJob: 1, sqlRoundTripsPerJob: 3 },
    ...(profile === undefined ? {} : { profile }),
  };
}

async function measureGenq(options: { redisUrl: string; databaseUrl: string; jobs: number }) {
  const api = await startBenchApi(options);
  const storageDirectory = await mkdtemp(join(tmpdir(), "genq-bench-objects-"));
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  // Paused while the jobs are submitted, so the counters see only the worker draining them.
  const textQueue = new Queue("text", { connection: { url: options.redisUrl }, prefix: api.prefix });
  try {
    const environment = {
      DATABASE_URL: api.databaseUrl,
      REDIS_URL: options.redisUrl,
      GENQ_QUEUE_PREFIX: api.prefix,
      GENQ_WORKER_QUEUES: "text",
      GENQ_TEXT_CONCURRENCY: String(CONCURRENCY),
      GENQ_MOCK_LATENCY_MS: "0",
      GENQ_STORAGE_DRIVER: "local",
      GENQ_STORAGE_DIR: storageDirectory,
      GENQ_ASSET_RETENTION_DAYS: "0",
      // One user carries the whole load here, as in the other worker benchmarks.
      GENQ_TENANT_CONCURRENCY: process.env.GENQ_TENANT_CONCURRENCY ?? "0",
      LOG_LEVEL: "warn",
    };
    await textQueue.pause();
    worker = await startWorker(loadWorkerEnv(environment), pino({ level: "silent" }), environment);
    for (let index = 0; index < options.jobs; index += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, options.jobs - index) }, async () => {
          const response = await fetch(`${api.url}/v1/jobs`, {
            method: "POST",
            headers: { authorization: `Bearer ${api.apiKey}`, "content-type": "application/json" },
            body: TEXT_JOB_BODY,
          });
          if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}`);
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const profiling = process.env.GENQ_BENCH_PROFILE ? await startCpuProfile() : undefined;
    const counters = startCounting();
    try {
      await textQueue.resume();
      // Polled through a connection of its own, whose statements are not the worker's.
      const probe = new pg.Client({ connectionString: api.databaseUrl });
      await probe.connect();
      counters.ignore(probe);
      const countCompleted = async () => {
        {
          const { rows } = await probe.query<{ completed: number; failed: number }>(
            `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
                    count(*) FILTER (WHERE status IN ('failed', 'canceled'))::int AS failed FROM jobs`,
          );
          const row = rows[0] ?? { completed: 0, failed: 0 };
          if (row.failed > 0) throw new Error(`${row.failed} genq jobs failed or were canceled`);
          return row.completed;
        }
      };
      try {
        await waitUntil(async () => (await countCompleted()) >= options.jobs, 60_000 + options.jobs * 50);
      } finally {
        await probe.end();
      }
      const cost = counters.perJob(options.jobs);
      if (profiling === undefined) return { cost };
      const file = join(tmpdir(), `genq-p6-${Date.now()}.cpuprofile`);
      return { cost, profile: { file, ...(await profiling.stop(file)) } };
    } finally {
      counters.stop();
    }
  } finally {
    await worker?.close();
    await textQueue.close();
    await api.close();
    await rm(storageDirectory, { recursive: true, force: true });
  }
}

async function measureBaseline(options: { redisUrl: string; jobs: number }) {
  const prefix = `bench-cost-${randomBytes(5).toString("hex")}`;
  const producer = createRedisConnection({ url: options.redisUrl, role: "producer" });
  const consumer = createRedisConnection({ url: options.redisUrl, role: "worker" });
  producer.on("error", () => {});
  consumer.on("error", () => {});
  let worker: Worker | undefined;
  let queue: Queue | undefined;
  try {
    // A producer connection does not queue commands while it connects, and BullMQ sends some at once.
    await untilReady(producer);
    const textQueue = new Queue("text", { connection: producer, prefix, skipWaitingForReady: true });
    queue = textQueue;
    for (let index = 0; index < options.jobs; index += 500) {
      const ids = Array.from({ length: Math.min(500, options.jobs - index) }, () => randomUUID());
      await textQueue.addBulk(
        ids.map((id) => ({ name: "text", data: { jobId: id }, opts: baselineJobOptions(id) })),
      );
    }
    let completed = 0;
    const counters = startCounting();
    try {
      worker = new Worker("text", async () => {}, { connection: consumer, prefix, concurrency: CONCURRENCY });
      worker.on("error", () => {});
      worker.on("completed", () => {
        completed += 1;
      });
      await waitUntil(() => completed >= options.jobs, 60_000 + options.jobs * 50);
      return counters.perJob(options.jobs);
    } finally {
      counters.stop();
    }
  } finally {
    await worker?.close();
    await queue?.close();
    if (producer.status === "ready") await deleteKeys(producer, `${prefix}:*`).catch(() => {});
    producer.disconnect();
    consumer.disconnect();
  }
}

/** Wraps the `pg` and ioredis send paths of this process until `stop()`. */
function startCounting() {
  const clientPrototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const redisPrototype = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
  const originalQuery = clientPrototype.query;
  const originalSend = redisPrototype.sendCommand;
  let statements = 0;
  let transactions = 0;
  const commands = new Map<string, number>();
  const statementNames = new Map<string, number>();
  /** Clients whose queries are not the worker's (the bench's own probe). */
  const ignored = new Set<unknown>();
  const state = {
    ignore(client: unknown) {
      ignored.add(client);
    },
    stop() {
      clientPrototype.query = originalQuery;
      redisPrototype.sendCommand = originalSend;
    },
    perJob(jobs: number): PerJobCost {
      const cpu = process.cpuUsage(cpuStart);
      const seconds = (performance.now() - started) / 1_000;
      const redisTotal = [...commands.values()].reduce((sum, count) => sum + count, 0);
      return {
        cpuMsPerJob: round((cpu.user + cpu.system) / 1_000 / jobs, 3),
        sqlRoundTripsPerJob: round(statements / jobs, 2),
        transactionsPerJob: round(transactions / jobs, 2),
        redisCommandsPerJob: round(redisTotal / jobs, 2),
        topRedisCommands: [...commands.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12)
          .map(([name, count]) => `${name} ${round(count / jobs, 2)}`),
        jobsPerSecond: round(jobs / seconds, 1),
        topStatements: [...statementNames.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([name, count]) => `${name} ${round(count / jobs, 2)}`),
      };
    },
  };
  clientPrototype.query = function countedQuery(this: unknown, ...args: unknown[]) {
    if (!ignored.has(this)) {
      statements += 1;
      const first = args[0];
      const text = typeof first === "string" ? first : (first as { text?: unknown } | undefined)?.text;
      if (typeof text === "string" && /^\s*BEGIN\b/i.test(text)) transactions += 1;
      const name =
        (first as { name?: unknown } | undefined)?.name ??
        (typeof text === "string" ? text.trim().replace(/\s+/g, " ").slice(0, 40) : "?");
      statementNames.set(String(name), (statementNames.get(String(name)) ?? 0) + 1);
    }
    return originalQuery.apply(this, args);
  };
  redisPrototype.sendCommand = function countedSend(this: unknown, ...args: unknown[]) {
    const name = commandLabel(args[0] as { name?: string; args?: unknown[] } | undefined);
    commands.set(name, (commands.get(name) ?? 0) + 1);
    return originalSend.apply(this, args);
  };
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  return state;
}

/** A command's name; a script's (`evalsha`, `eval`) with its first key's shape, e.g. `evalsha(parked:*)`. */
function commandLabel(command: { name?: string; args?: unknown[] } | undefined): string {
  const name = command?.name ?? "?";
  if (name !== "evalsha" && name !== "eval") return name;
  const key = command?.args?.[2];
  if (typeof key !== "string" && !Buffer.isBuffer(key)) return name;
  const shape = String(key)
    .split(":")
    .slice(1)
    .map((part) => (/^[0-9a-z-]{16,}$|^\d+$/i.test(part) ? "*" : part))
    .join(":");
  return `${name}(${shape})`;
}

/** Polls `condition` every 20 ms until it holds, or rejects after `timeoutMs`. */
async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
