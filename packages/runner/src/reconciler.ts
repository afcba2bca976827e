import type { JobRepository } from "@genq/db";
import type { JobQueues } from "@genq/queue";
import type { Logger } from "pino";

/** Options for {@link Reconciler}. */
export interface ReconcilerOptions {
  jobs: JobRepository;
  queues: JobQueues;
  logger: Logger;
  /** How often to look; the first pass runs at start. */
  intervalMs: number;
  /** A queued job younger than this may still be on its way into Redis; leave it. */
  queuedGraceMs: number;
  /** An active job younger than this may still be running; leave it. */
  activeGraceMs: number;
  /** Rows examined per page. */
  pageSize?: number;
}

/**
 * Re-enqueues jobs that Postgres says are queued (or active) but BullMQ does not
 * know, e.g. after Redis restarted without persistence. Adding is idempotent on
 * the job id, so several reconcilers (one per worker process) can run at once.
 */
export class Reconciler {
  readonly #options: ReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** Starts periodic passes. */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = () => {
      this.reconcileOnce().catch((error: unknown) => {
        this.#options.logger.warn({ err: error }, "reconcile pass failed; will try again");
      });
    };
    tick();
    this.#timer = setInterval(tick, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops periodic passes and waits for one in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => 0);
  }

  /** One pass; returns how many jobs were re-enqueued. Concurrent calls share a pass. */
  reconcileOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { jobs, queues, logger } = this.#options;
    const pageSize = this.#options.pageSize ?? 500;
    const now = Date.now();
    const queuedBefore = new Date(now - this.#options.queuedGraceMs);
    const activeBefore = new Date(now - this.#options.activeGraceMs);
    let requeued = 0;
    let afterId: string | undefined;
    for (;;) {
      const page = await jobs.findUnfinished({
        queuedBefore,
        activeBefore,
        limit: pageSize,
        ...(afterId === undefined ? {} : { afterId }),
      });
      const known = await Promise.all(page.map((job) => queues.has(job.type, job.id)));
      const missing = page.filter((_, index) => !known[index]);
      await Promise.all(
        missing.map((job) => queues.enqueue({ id: job.id, type: job.type, priority: job.priority })),
      );
      for (const job of missing)
        logger.warn({ jobId: job.id, status: job.status }, "job was missing from its queue; re-enqueued");
      requeued += missing.length;
      if (page.length < pageSize) break;
      afterId = page.at(-1)?.id;
    }
    if (requeued > 0) logger.info({ requeued }, "reconcile pass re-enqueued jobs");
    return requeued;
  }
}
