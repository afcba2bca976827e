import type { GenqEvent } from "@genq/core";
import { jobFinishedEvents, recordBatchItemsFinished } from "./batch-events.ts";
import type { Prisma } from "./generated/prisma/client.ts";
import type { JobFinishedHooks } from "./job-finished.ts";
import { RELEASE_HOLDS_SQL } from "./lifecycle/quota-holds.ts";

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
  /** At most one `batch.progress` event per batch per this interval; default 5 s. */
  batchProgressIntervalMs?: number | undefined;
}

/**
 * The effects of jobs finishing, run in the transaction that finishes them: the
 * quota a failed or canceled job held is given back (so no hold outlives its job
 * even when the process dies right after; only jobs that reached the queue can
 * hold anything), batch counters and batch events, job events, the webhook outbox;
 * and live publication after commit.
 */
export function createJobFinishedHooks(options: JobFinishedHooksOptions = {}): JobFinishedHooks {
  const progressIntervalMs = options.batchProgressIntervalMs ?? 5_000;
  return {
    async inTransaction(transaction, jobs) {
      const holders = jobs.filter((job) => job.status !== "completed" && job.dispatchedAt !== null);
      if (holders.length > 0)
        await transaction.$queryRawUnsafe(
          RELEASE_HOLDS_SQL,
          holders.map((job) => job.id),
          new Date(),
        );
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
