import { createRedisConnection } from "@genq/queue";
import { Queue, Worker } from "bullmq";
import type { Logger } from "pino";

/** A periodic task run by whichever worker process picks its scheduled job. */
export interface MaintenanceTask {
  /** Unique; the BullMQ job scheduler id. */
  name: string;
  everyMs: number;
  run(): Promise<Record<string, unknown>>;
}

/** Running maintenance: its queue and worker. */
export interface Maintenance {
  close(): Promise<void>;
}

/** The queue maintenance jobs run on. */
export const MAINTENANCE_QUEUE = "maintenance";

/**
 * Periodic housekeeping (asset retention, quota reclaim) as BullMQ job schedulers:
 * every worker process upserts the same schedulers, BullMQ creates one job per
 * tick, and exactly one process runs it, so the work is never done twice at once.
 */
export async function startMaintenance(options: {
  redisUrl: string;
  prefix: string;
  tasks: MaintenanceTask[];
  logger: Logger;
}): Promise<Maintenance> {
  const { logger } = options;
  const producer = createRedisConnection({
    url: options.redisUrl,
    role: "worker",
    connectionName: "genq-maintenance",
  });
  const queue = new Queue(MAINTENANCE_QUEUE, { connection: producer, prefix: options.prefix });
  for (const task of options.tasks) {
    await queue.upsertJobScheduler(
      task.name,
      { every: task.everyMs },
      { name: task.name, opts: { removeOnComplete: 100, removeOnFail: 100 } },
    );
  }
  const tasks = new Map(options.tasks.map((task) => [task.name, task]));
  const connection = createRedisConnection({
    url: options.redisUrl,
    role: "worker",
    connectionName: "genq-maintenance-worker",
  });
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job) => {
      const task = tasks.get(job.name);
      // Another worker version scheduled a task this one does not know: leave it be.
      if (task === undefined) return { skipped: true };
      const outcome = await task.run();
      logger.info({ task: task.name, ...outcome }, "maintenance task done");
      return outcome;
    },
    { connection, prefix: options.prefix, concurrency: 1 },
  );
  worker.on("error", (error) => logger.error({ err: error }, "maintenance worker error"));
  worker.on("failed", (job, error) =>
    logger.warn({ err: error, task: job?.name }, "maintenance task failed"),
  );
  await worker.waitUntilReady();
  return {
    async close() {
      await worker.close();
      await queue.close();
      producer.disconnect();
      connection.disconnect();
    },
  };
}
