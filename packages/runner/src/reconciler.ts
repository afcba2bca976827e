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
 * know (e.g. after Redis restarted without persistence) or holds as finished
 * (e.g. every attempt failed while Postgres was unreachable, so the outcome was
 * never recorded). Adding is idempotent on the job id, so reconcilers in several
 * processes are safe; a lease makes one of them do each periodic pass.
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
      this.#options.queues
        .acquireLease("reconciler", Math.max(this.#options.intervalMs - 100, 100))
        .then((leased) => (leased ? this.reconcileOnce() : 0))
        .catch((error: unknown) => {
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
      const states = await Promise.all(page.map((job) => queues.state(job.type, job.id)));
      const stranded = page
        .map((job, index) => ({ job, state: states[index] ?? "unknown" }))
        .filter(({ state }) => state === "unknown" || state === "completed" || state === "failed");
      await Promise.all(
        stranded.map(({ job }) => queues.requeue({ id: job.id, type: job.type, priority: job.priority })),
      );
      for (const { job, state } of stranded) {
        logger.warn(
          { jobId: job.id, status: job.status, queueState: state },
          "job was not waiting in its queue; re-enqueued",
        );
      }
      requeued += stranded.length;
      if (page.length < pageSize) break;
      afterId = page.at(-1)?.id;
    }
    if (requeued > 0) logger.info({ requeued }, "reconcile pass re-enqueued jobs");
    return requeued;
  }
}
