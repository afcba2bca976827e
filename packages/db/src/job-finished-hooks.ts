import type { GenqEvent } from "@genq/core";
import { jobFinishedEvents, recordBatchItemsFinished } from "./batch-events.ts";
import type { Prisma } from "./generated/prisma/client.ts";
import type { JobFinishedHooks } from "./job-finished.ts";

/** Options for {@link createJobFinishedHooks}. */
export interface JobFinishedHooksOptions {
  /**
   * Writes events to the webhook outbox inside the finishing transaction, so an
   * event is stored exactly when its transition commits (see @genq/webhooks).
   */
  outbox?:
    | ((transaction: Prisma.TransactionClient, events: readonly GenqEvent[]) => Promise<void>)
    | undefined;
  /** Receives the events after commit (live streams); best effort. */
  publish?: ((events: readonly GenqEvent[]) => void) | undefined;
  /**
   * Gives back the quota a failed or canceled job held, inside the transaction that
   * finished it (`QuotaLedger.release`), so no hold outlives its job even when the
   * process dies right after. Only jobs that reached the queue can hold anything.
   */
  releaseQuota?: ((transaction: Prisma.TransactionClient, jobId: string) => Promise<unknown>) | undefined;
  /** At most one `batch.progress` event per batch per this interval; default 5 s. */
  batchProgressIntervalMs?: number | undefined;
}

/**
 * The hooks every process that finishes jobs gives its JobRepository (and
 * BatchRepository): batch counters and batch events, job events, the webhook
 * outbox, and live publication after commit.
 */
export function createJobFinishedHooks(options: JobFinishedHooksOptions = {}): JobFinishedHooks {
  const progressIntervalMs = options.batchProgressIntervalMs ?? 5_000;
  return {
    async inTransaction(transaction, jobs) {
      if (options.releaseQuota !== undefined) {
        for (const job of jobs) {
          if (job.status !== "completed" && job.dispatchedAt !== null)
            await options.releaseQuota(transaction, job.id);
        }
      }
      const events = [
        ...jobFinishedEvents(jobs),
        ...(await recordBatchItemsFinished(transaction, jobs, { progressIntervalMs })),
      ];
      await options.outbox?.(transaction, events);
      return events;
    },
    ...(options.publish === undefined
      ? {}
      : { afterCommit: (_jobs: unknown, events: readonly GenqEvent[]) => options.publish?.(events) }),
  };
}
