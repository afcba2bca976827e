/**
 * What reading a queued job's position costs on a long queue: 100,000 waiting jobs
 * (BullMQ's prioritized set, as genq enqueues them), 1,000 finished ones for the drain
 * rate, then 2,000 serial `JobQueues.position` reads of jobs near the front, the middle
 * and the back. Run: `pnpm --filter @genq/bench exec node --import tsx src/queue-position-cost.ts`
 * (REDIS_URL, default the machine's; uses and deletes its own random prefix).
 */
import { randomBytes } from "node:crypto";
import { JobQueues } from "@genq/queue";
import { Redis } from "ioredis";
import { deleteKeys } from "./end-to-end-throughput.ts";
import { percentile, round } from "./stats.ts";

const WAITING = Number(process.env.WAITING ?? 100_000);
const READS = 2_000;

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
const prefix = `bench-position-${randomBytes(4).toString("hex")}`;
const queues = new JobQueues({ connection: redis, prefix });
try {
  // urgent, normal and low (genq's BullMQ priorities), interleaved.
  const priorities = [1, 5, 7];
  for (let start = 0; start < WAITING; start += 1_000) {
    await queues.enqueueBulk(
      Array.from({ length: Math.min(1_000, WAITING - start) }, (_, offset) => ({
        id: `job-${start + offset}`,
        type: "text" as const,
        priority: priorities[(start + offset) % priorities.length] ?? 5,
      })),
    );
  }
  // A kept history of finished jobs, as BullMQ leaves it (scored by when each finished).
  const now = Date.now();
  const finished: Array<string | number> = [];
  for (let index = 0; index < 1_000; index++) finished.push(now - index * 50, `done-${index}`);
  await redis.zadd(`${prefix}:text:completed`, ...finished);
  const ids = [`job-1`, `job-${Math.floor(WAITING / 2)}`, `job-${WAITING - 1}`];
  for (const id of ids) await queues.position("text", id);
  const samples: number[] = [];
  for (let read = 0; read < READS; read++) {
    const id = ids[read % ids.length] ?? "job-1";
    const started = process.hrtime.bigint();
    await queues.position("text", id);
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const back = await queues.position("text", `job-${WAITING - 1}`);
  console.log(
    JSON.stringify(
      {
        waiting: await redis.zcard(`${prefix}:text:prioritized`),
        reads: READS,
        medianMs: round(percentile(samples, 50)),
        p99Ms: round(percentile(samples, 99)),
        back,
      },
      null,
      2,
    ),
  );
} finally {
  await queues.close();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
}
