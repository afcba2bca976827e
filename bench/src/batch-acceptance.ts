import { type ChildProcess, fork } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { buildApp } from "@genq/api";
import { AccountRepository, BatchItemSpool, BatchRepository, createPrismaClient } from "@genq/db";
import { createTestDatabase } from "@genq/db/testing";
import { createRedisConnection, JobQueues } from "@genq/queue";
import { QuotaLedger } from "@genq/quota";
import { Queue } from "bullmq";
import { baselineJobOptions, deleteKeys, untilReady } from "./end-to-end-throughput.ts";
import { percentile, round } from "./stats.ts";

/** The P5 batch figures of one run. */
export interface BatchAcceptanceResult {
  name: "batch-acceptance";
  /** `POST /v1/batches` (JSON, 10,000 items) until its 202, median of runs, ms. */
  accept10k: { genqMs: number; baselineMs: number; runs: number; goalMs: 1_000 };
  /** Held-back items released to BullMQ (claim in Postgres + addBulk), no cap; items/s. */
  enqueue: { items: number; genqPerSecond: number; baselinePerSecond: number; goalPerSecond: 20_000 };
  /**
   * Peak growth of the API process's RSS while it accepts a streamed JSONL batch, MiB
   * (after a forced GC; the peak includes garbage V8 has not collected yet).
   */
  memory: {
    baselineItems: number;
    /** Peak RSS of a fresh, warmed-up API process accepting `baselineItems`. */
    baselinePeakMiB: number;
    baselineGrowthMiB: number;
    items: number;
    peakMiB: number;
    growthMiB: number;
    /** Peak RSS at 100,000 items ÷ at 10,000: about 1 when memory stays flat. */
    ratio: number;
    acceptMs: number;
    /** For contrast: the same 100,000 items as one JSON body, which must be parsed whole. */
    jsonBodyPeakMiB: number;
    /** Heap still used after the request and a forced GC, above the level before it. */
    retainedMiB: { baseline: number; items: number };
  };
}

const ACCEPT_ITEMS = 10_000;
const ACCEPT_RUNS = 3;
const ENQUEUE_ITEMS = 20_000;
const MEMORY_ITEMS = 100_000;
const CHILD_FLAG = "--batch-acceptance-api";

function item(index: number): { prompt: string; maxTokens: number } {
  return {
    prompt: `benchmark item ${index}: summarize the quarterly report in two sentences`,
    maxTokens: 64,
  };
}

/**
 * P5: how fast `POST /v1/batches` accepts 10,000 items (÷ the same rows in one
 * multi-row INSERT through the same driver, without HTTP or validation), how fast
 * held-back items are released to BullMQ (÷ raw `addBulk` of as many jobs), and how
 * much the API process's memory grows while it accepts 100,000 streamed JSONL items
 * (÷ the growth for 10,000: flat memory gives about 1; each measured in a fresh,
 * warmed-up API process, with the heap still used after a forced GC alongside, since
 * the peak includes garbage V8 had not collected yet). The API runs in a child
 * process so its memory is its own; no worker runs.
 */
export async function benchBatchAcceptance(options: {
  redisUrl: string;
  databaseUrl: string;
}): Promise<BatchAcceptanceResult> {
  const database = await createTestDatabase({ baseUrl: options.databaseUrl });
  const prefix = `bench-batch-${randomBytes(5).toString("hex")}`;
  const db = createPrismaClient({ connectionString: database.url });
  const redis = createRedisConnection({
    url: options.redisUrl,
    role: "producer",
    connectionName: "bench-batch",
  });
  redis.on("error", () => {});
  const children: ChildProcess[] = [];
  try {
    await untilReady(redis);
    const { user, apiKey } = await new AccountRepository({ db }).createUser({
      email: `bench-${randomBytes(4).toString("hex")}@example.com`,
      plan: "enterprise",
    });
    await new QuotaLedger({ db }).setUserLimits(user.id, { textTokenLimit: Number.MAX_SAFE_INTEGER });
    const headers = { authorization: `Bearer ${apiKey}` };
    const jsonBody = (count: number) =>
      JSON.stringify({ type: "text", items: Array.from({ length: count }, (_, index) => item(index)) });
    /** A fresh API process, warmed up (both body kinds once), so no earlier request shapes its heap. */
    const startApi = async () => {
      const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
        execArgv: ["--import", "tsx", "--expose-gc"],
        env: {
          ...process.env,
          DATABASE_URL: database.url,
          REDIS_URL: options.redisUrl,
          BENCH_PREFIX: prefix,
        },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.push(child);
      const api = new ChildApi(child);
      const { port } = (await api.next()) as { port: number };
      const url = `http://127.0.0.1:${port}/v1/batches`;
      await post(url, headers, "application/json", jsonBody(500));
      await post(url, headers, "application/x-ndjson", jsonlStream(500), "?type=text");
      return { api, url, child };
    };

    // Memory: each figure in its own fresh API process.
    const growth = async (count: number, as: "jsonl" | "json" = "jsonl") => {
      const { api, url, child } = await startApi();
      api.send("reset");
      await api.next();
      const started = performance.now();
      if (as === "json") await post(url, headers, "application/json", jsonBody(count));
      else await post(url, headers, "application/x-ndjson", jsonlStream(count), "?type=text");
      const elapsed = performance.now() - started;
      api.send("peak");
      const { base, peak, heapBase, heapAfter } = (await api.next()) as {
        base: number;
        peak: number;
        heapBase: number;
        heapAfter: number;
      };
      child.kill("SIGKILL");
      const mib = (bytes: number) => round(bytes / 1024 / 1024, 1);
      return {
        peakMiB: mib(peak),
        growthMiB: mib(peak - base),
        retainedMiB: mib(heapAfter - heapBase),
        elapsed,
      };
    };
    const small = await growth(ACCEPT_ITEMS);
    const large = await growth(MEMORY_ITEMS);
    const whole = await growth(MEMORY_ITEMS, "json");

    const { url } = await startApi();
    // Then accepting 10,000 items as JSON.
    const acceptSamples: number[] = [];
    const body10k = jsonBody(ACCEPT_ITEMS);
    for (let run = 0; run < ACCEPT_RUNS; run++) {
      const started = performance.now();
      await post(url, headers, "application/json", body10k);
      acceptSamples.push(performance.now() - started);
    }
    const baselineSamples: number[] = [];
    for (let run = 0; run < ACCEPT_RUNS; run++) {
      baselineSamples.push(await rawInsert(db, user.id, ACCEPT_ITEMS));
    }

    // Releasing held-back items to BullMQ, as the fair dispatcher does, with no cap.
    const queues = new JobQueues({ connection: redis, prefix });
    const batches = new BatchRepository({ db });
    const spool = await BatchItemSpool.fromItems(checkedItems(ENQUEUE_ITEMS));
    const { batch } = await batches
      .create({ userId: user.id, type: "text", priority: 7 }, spool)
      .finally(() => spool.close());
    const enqueueStarted = performance.now();
    let released = 0;
    for (;;) {
      const items = await batches.claimItems(batch.id, 5_000, released);
      if (items.length === 0) break;
      await queues.enqueueBulk(items);
      released += items.length;
    }
    const enqueueSeconds = (performance.now() - enqueueStarted) / 1_000;
    await queues.close();
    const baselinePerSecond = await rawAddBulk(options.redisUrl, ENQUEUE_ITEMS);

    return {
      name: "batch-acceptance",
      accept10k: {
        genqMs: round(percentile(acceptSamples, 50), 1),
        baselineMs: round(percentile(baselineSamples, 50), 1),
        runs: ACCEPT_RUNS,
        goalMs: 1_000,
      },
      enqueue: {
        items: released,
        genqPerSecond: Math.round(released / enqueueSeconds),
        baselinePerSecond,
        goalPerSecond: 20_000,
      },
      memory: {
        baselineItems: ACCEPT_ITEMS,
        baselinePeakMiB: small.peakMiB,
        baselineGrowthMiB: small.growthMiB,
        items: MEMORY_ITEMS,
        peakMiB: large.peakMiB,
        growthMiB: large.growthMiB,
        ratio: round(large.peakMiB / small.peakMiB, 2),
        acceptMs: round(large.elapsed, 0),
        jsonBodyPeakMiB: whole.peakMiB,
        retainedMiB: { baseline: small.retainedMiB, items: large.retainedMiB },
      },
    };
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await deleteKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
    await db.$disconnect();
    await database.drop();
  }
}

async function* checkedItems(count: number) {
  for (let index = 0; index < count; index++) yield { index, valid: true as const, input: item(index) };
}

/** A JSONL body produced line by line, so the client never holds it whole either. */
function jsonlStream(count: number): ReadableStream<Uint8Array> {
  return Readable.toWeb(
    Readable.from(
      (function* () {
        for (let start = 0; start < count; start += 1_000) {
          const lines: string[] = [];
          for (let index = start; index < Math.min(start + 1_000, count); index++)
            lines.push(JSON.stringify(item(index)));
          yield `${lines.join("\n")}\n`;
        }
      })(),
    ),
  ) as ReadableStream<Uint8Array>;
}

async function post(
  url: string,
  headers: Record<string, string>,
  contentType: string,
  body: string | ReadableStream<Uint8Array>,
  query = "",
): Promise<void> {
  const response = await fetch(`${url}${query}`, {
    method: "POST",
    headers: { ...headers, "content-type": contentType },
    body,
    ...(typeof body === "string" ? {} : { duplex: "half" }),
  } as RequestInit);
  const text = await response.text();
  if (response.status !== 202)
    throw new Error(`POST /v1/batches answered ${response.status}: ${text.slice(0, 300)}`);
}

/** The floor: the same rows in one multi-row INSERT, one transaction, no HTTP and no validation. */
async function rawInsert(
  db: ReturnType<typeof createPrismaClient>,
  userId: string,
  count: number,
): Promise<number> {
  const rows = JSON.stringify(
    Array.from({ length: count }, (_, index) => ({ id: randomUUID(), input: item(index) })),
  );
  const started = performance.now();
  await db.$executeRawUnsafe(
    `INSERT INTO jobs (id, user_id, type, status, priority, input, updated_at)
     SELECT item.id, $1::uuid, 'text', 'queued', 7, item.input, now()
     FROM jsonb_to_recordset($2::jsonb) AS item(id uuid, input jsonb)`,
    userId,
    rows,
  );
  return performance.now() - started;
}

/** Raw BullMQ: `addBulk` of `count` jobs with genq's options, in chunks of 1,000. */
async function rawAddBulk(redisUrl: string, count: number): Promise<number> {
  const prefix = `bench-bulk-${randomBytes(5).toString("hex")}`;
  const redis = createRedisConnection({ url: redisUrl, role: "producer", connectionName: "bench-bulk" });
  redis.on("error", () => {});
  await untilReady(redis);
  const queue = new Queue("text", { connection: redis, prefix, skipWaitingForReady: true });
  queue.on("error", () => {});
  try {
    const started = performance.now();
    for (let start = 0; start < count; start += 1_000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1_000, count - start) }, () => {
          const id = randomUUID();
          return { name: "text", data: { jobId: id }, opts: { ...baselineJobOptions(id), priority: 7 } };
        }),
      );
    }
    return Math.round(count / ((performance.now() - started) / 1_000));
  } finally {
    await queue.close();
    await deleteKeys(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
  }
}

/** Talks to the API child over IPC: one answer per request, in order. */
class ChildApi {
  readonly #child: ChildProcess;
  readonly #messages: unknown[] = [];
  #waiting: ((message: unknown) => void) | undefined;

  constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (message) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting === undefined) this.#messages.push(message);
      else waiting(message);
    });
  }

  send(message: string): void {
    this.#child.send(message);
  }

  next(): Promise<unknown> {
    if (this.#messages.length > 0) return Promise.resolve(this.#messages.shift());
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#child.once("exit", (code) => reject(new Error(`the API child exited with ${code}`)));
    });
  }
}

/** The child: the genq API as main.ts builds it (no rate limit, no logging), reporting its memory. */
async function serveApi(): Promise<void> {
  const db = createPrismaClient({ connectionString: process.env.DATABASE_URL ?? "" });
  const redis = createRedisConnection({
    url: process.env.REDIS_URL ?? "",
    role: "producer",
    connectionName: "bench-api",
  });
  redis.on("error", () => {});
  await untilReady(redis);
  const queues = new JobQueues({ connection: redis, prefix: process.env.BENCH_PREFIX ?? "bench" });
  const app = await buildApp({
    db,
    redis,
    queues,
    quota: new QuotaLedger({ db }),
    logger: false,
    docs: false,
    admin: { user: "operator", password: randomBytes(12).toString("hex") },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  let base = process.memoryUsage.rss();
  let peak = base;
  let heapBase = process.memoryUsage().heapUsed;
  let heapPeak = heapBase;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }, 5);
  sampler.unref();
  process.on("message", (message) => {
    if (message === "reset") {
      (globalThis as { gc?: () => void }).gc?.();
      base = process.memoryUsage.rss();
      peak = base;
      heapBase = process.memoryUsage().heapUsed;
      heapPeak = heapBase;
      process.send?.({ base });
    } else if (message === "peak") {
      peak = Math.max(peak, process.memoryUsage.rss());
      (globalThis as { gc?: () => void }).gc?.();
      process.send?.({ base, peak, heapBase, heapPeak, heapAfter: process.memoryUsage().heapUsed });
    }
  });
  process.send?.({ port: (app.server.address() as AddressInfo).port });
  await once(process, "disconnect");
  process.exit(0);
}

if (process.argv.includes(CHILD_FLAG)) {
  serveApi().catch((error: unknown) => {
    process.stderr.write(`batch bench API failed: ${String(error)}\n`);
    process.exit(1);
  });
}
