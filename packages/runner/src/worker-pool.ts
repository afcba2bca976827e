import type { JobType, QueuedJobPayload } from "@genq/core";
import type { JobRepository } from "@genq/db";
import type { JobLifecycle } from "@genq/lifecycle";
import type { GenqMetrics } from "@genq/metrics";
import type { ProviderRouter } from "@genq/providers";
import { cancelChannel, createRedisConnection, type JobQueues, retryDelayMs } from "@genq/queue";
import type { QuotaLedger } from "@genq/quota";
import { UnrecoverableError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { type AttemptOutcome, JobProcessor } from "./job-processor.ts";
import type { JobImageStore, JobProcessorOptions } from "./job-processor-options.ts";
import { Reconciler } from "./reconciler.ts";
import { TenantGate } from "./tenant-gate.ts";

/** One queue a worker process runs, with its concurrency. */
export interface QueueAssignment {
  type: JobType;
  concurrency: number;
}

/** Options for {@link startWorkerPool}. */
export interface WorkerPoolOptions {
  redisUrl: string;
  /** Reads jobs (the reconciler's scan). */
  jobs: JobRepository;
  /** Every job transition: claim, complete, retry, fail, cancel. */
  lifecycle: JobLifecycle;
  /** Producer-side queues, used by the reconciler (same prefix as the workers). */
  queues: JobQueues;
  router: ProviderRouter;
  /** Users' own provider keys (BYO); see the job processor. */
  userKeys?: JobProcessorOptions["userKeys"];
  /** Job and provider metrics for /metrics. */
  metrics?: GenqMetrics;
  /** Charges jobs against their user's plan (reserve, settle, release). */
  quota?: QuotaLedger;
  /** Where image jobs store their images; without it image jobs fail with a clear error. */
  images?: JobImageStore;
  /** Live job events (started, retrying, deltas); see the job processor. */
  events?: JobProcessorOptions["events"];
  /** The result cache of deterministic text jobs; see the job processor. */
  resultCache?: JobProcessorOptions["resultCache"];
  logger: Logger;
  assignments: QueueAssignment[];
  /** How long a job's lock lasts without renewal; a dead worker's job stalls after it. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for. */
  stalledIntervalMs?: number;
  /** How many stalls a job survives before it fails. */
  maxStalledCount?: number;
  reconcileIntervalMs?: number;
  /**
   * The most jobs one `basic` user may have running at once over every worker (other
   * plans get 2× and 4×); jobs past it are parked until one of the user's jobs stops.
   * Absent or 0: no cap.
   */
  tenantCap?: number | undefined;
  /** See {@link JobProcessorOptions.postponeDeadlineMs}. */
  postponeDeadlineMs?: number | undefined;
}

/** Running workers; {@link WorkerPool.close} shuts them down gracefully. */
export interface WorkerPool {
  workers: Array<Worker<QueuedJobPayload>>;
  reconciler: Reconciler;
  /**
   * Stops taking jobs and waits up to `timeoutMs` for in-flight ones; after that
   * they are abandoned to BullMQ's stall recovery (another worker re-runs them).
   */
  close(options?: { timeoutMs?: number }): Promise<{ drained: boolean }>;
}

/** Starts a BullMQ worker per assigned queue, the cancel listener and the reconciler. */
export async function startWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  const { logger, jobs, queues } = options;
  const connections: Redis[] = [];
  let tenantGate: TenantGate | undefined;
  if (options.tenantCap !== undefined && options.tenantCap > 0) {
    const gateConnection = createRedisConnection({
      url: options.redisUrl,
      role: "producer",
      connectionName: "genq-tenant-gate",
    });
    gateConnection.on("error", () => {});
    connections.push(gateConnection);
    const gateSubscriber = createRedisConnection({
      url: options.redisUrl,
      role: "subscriber",
      connectionName: "genq-tenant-gate-subscriber",
    });
    gateSubscriber.on("error", () => {});
    connections.push(gateSubscriber);
    tenantGate = new TenantGate({
      queues,
      redis: gateConnection,
      subscriber: gateSubscriber,
      logger,
      tenantCap: options.tenantCap,
    });
    await tenantGate.start();
  }
  const { lifecycle } = options;
  const processors: JobProcessor[] = [];
  const workers = options.assignments.map((assignment) => {
    const definition = queues.definition(assignment.type);
    const connection = createRedisConnection({
      url: options.redisUrl,
      role: "worker",
      connectionName: `genq-worker-${definition.name}`,
    });
    connections.push(connection);
    const processor = new JobProcessor({
      lifecycle,
      router: options.router,
      ...(options.images === undefined ? {} : { images: options.images }),
      ...(options.quota === undefined ? {} : { quota: options.quota }),
      ...(options.userKeys === undefined ? {} : { userKeys: options.userKeys }),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.events === undefined ? {} : { events: options.events }),
      ...(options.resultCache === undefined ? {} : { resultCache: options.resultCache }),
      ...(tenantGate === undefined ? {} : { tenantGate }),
      ...(options.postponeDeadlineMs === undefined ? {} : { postponeDeadlineMs: options.postponeDeadlineMs }),
      logger,
      attemptTimeoutMs: definition.attemptTimeoutMs,
    });
    processors.push(processor);
    // The processor takes no abort signal (BullMQ then allocates none per job): cancels go to processor.cancel.
    const worker = new Worker<QueuedJobPayload>(definition.name, processor.process, {
      connection,
      prefix: queues.prefix,
      concurrency: assignment.concurrency,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 2,
      settings: {
        backoffStrategy: (attemptsMade, _type, error, job) =>
          retryDelayMs({
            attemptsMade,
            baseMs: typeof job?.opts.backoff === "object" ? (job.opts.backoff.delay ?? 1_000) : 1_000,
            retryAfterMs: (error as { retryAfterMs?: number } | undefined)?.retryAfterMs,
          }),
      },
    });
    worker.on("failed", (job, error) => {
      // The processor records its own failures. A job that stalled too often never
      // reached it, so its failure is recorded here. (If this write is lost, the
      // reconciler finds the unfinished row and runs the job again.)
      if (job === undefined || !/stalled/i.test(error.message)) return;
      options.lifecycle
        .stallFail(job.data.jobId)
        .catch((failure: unknown) =>
          logger.error({ err: failure, jobId: job.data.jobId }, "could not record failure"),
        );
    });
    worker.on("error", (error) => logger.error({ err: error, queue: definition.name }, "worker error"));
    const { metrics } = options;
    if (metrics !== undefined) {
      const type = assignment.type;
      worker.on("active", (job) => {
        if (job.processedOn !== undefined)
          metrics.jobWait.observe({ type }, Math.max(0, job.processedOn - job.timestamp) / 1_000);
      });
      worker.on("completed", (job, outcome: AttemptOutcome) => {
        metrics.jobsFinished.inc({ type, outcome: outcome?.status ?? "completed" });
        if (job.processedOn !== undefined && job.finishedOn !== undefined) {
          metrics.jobRun.observe({ type }, (job.finishedOn - job.processedOn) / 1_000);
        }
      });
      worker.on("failed", (job, error) => {
        const willRetry =
          job !== undefined &&
          !(error instanceof UnrecoverableError) &&
          job.attemptsMade < (job.opts.attempts ?? 1);
        metrics.jobsFinished.inc({
          type,
          outcome: error.name === "DelayedError" ? "delayed" : willRetry ? "retried" : "failed",
        });
      });
    }
    return worker;
  });

  const subscriber = createRedisConnection({
    url: options.redisUrl,
    role: "subscriber",
    connectionName: "genq-cancel",
  });
  connections.push(subscriber);
  subscriber.on("error", () => {});
  await subscriber.subscribe(cancelChannel(queues.prefix));
  subscriber.on("message", (_channel: string, jobId: string) => {
    for (const processor of processors) {
      if (processor.cancel(jobId)) logger.info({ jobId }, "aborting canceled job");
    }
  });

  const reconciler = new Reconciler({
    jobs,
    queues,
    logger,
    intervalMs: options.reconcileIntervalMs ?? 15_000,
    queuedGraceMs: 10_000,
    // An active job is only taken for lost after the longest attempt this process could run;
    // a process running no job queue (webhook delivery only) uses the catalog's longest.
    activeGraceMs:
      Math.max(
        ...(options.assignments.length > 0
          ? options.assignments
          : [{ type: "text" as const }, { type: "image" as const }]
        ).map((assignment) => queues.definition(assignment.type).attemptTimeoutMs),
      ) + 60_000,
  });
  reconciler.start();
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));

  return {
    workers,
    reconciler,
    async close({ timeoutMs = 30_000 } = {}) {
      await reconciler.stop();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const drained = await Promise.race([
        Promise.all(workers.map((worker) => worker.close())).then(() => true),
        timedOut,
      ]);
      clearTimeout(timer);
      // Past the deadline, in-flight jobs are abandoned, not aborted (aborting would
      // read as a cancel): their locks lapse and BullMQ's stall check hands them to
      // another worker. (worker.close(true) would not help: BullMQ returns the pending close.)
      if (!drained)
        logger.warn({ timeoutMs }, "shutdown deadline passed; abandoning in-flight jobs to another worker");
      await subscriber.unsubscribe().catch(() => {});
      for (const connection of connections) connection.disconnect();
      return { drained };
    },
  };
}
