import type { BatchCounts, GenqEvent } from "@genq/core";
import type { Batch, Prisma } from "./generated/prisma/client.ts";
import type { FinishedJob } from "./job-finished.ts";

/** Options for {@link recordBatchItemsFinished}. */
export interface BatchProgressOptions {
  /** At most one `batch.progress` event per batch per this interval. */
  progressIntervalMs: number;
  now?: () => Date;
}

/** A batch's counts by status, from its counters. */
export function batchCounts(
  batch: Pick<Batch, "total" | "completedCount" | "failedCount" | "canceledCount">,
): BatchCounts {
  const finished = batch.completedCount + batch.failedCount + batch.canceledCount;
  return {
    total: batch.total,
    queued: batch.total - finished,
    completed: batch.completedCount,
    failed: batch.failedCount,
    canceled: batch.canceledCount,
  };
}

/**
 * Counts finished batch items on their batches, inside the transaction that
 * finished them, and returns the batch events this caused: `batch.completed` when
 * the last item finished (exactly once: the status update is conditional), else a
 * `batch.progress` at most once per interval. Items that finished while the fair
 * dispatcher still held them back (canceled before dispatch) count as released.
 */
export async function recordBatchItemsFinished(
  transaction: Prisma.TransactionClient,
  jobs: readonly FinishedJob[],
  options: BatchProgressOptions,
): Promise<GenqEvent[]> {
  const byBatch = new Map<string, FinishedJob[]>();
  for (const job of jobs) {
    if (job.batchId === null) continue;
    const items = byBatch.get(job.batchId) ?? [];
    items.push(job);
    byBatch.set(job.batchId, items);
  }
  const events: GenqEvent[] = [];
  // In id order, so two transactions finishing items of the same batches lock them alike.
  for (const [batchId, items] of [...byBatch].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const count = (status: FinishedJob["status"]) => items.filter((item) => item.status === status).length;
    const batch = await transaction.batch.update({
      where: { id: batchId },
      data: {
        completedCount: { increment: count("completed") },
        failedCount: { increment: count("failed") },
        canceledCount: { increment: count("canceled") },
        dispatchedCount: { increment: items.filter((item) => item.dispatchedAt === null).length },
      },
    });
    const now = options.now?.() ?? new Date();
    const counts = batchCounts(batch);
    if (counts.queued === 0 && batch.status === "running") {
      const status = batch.cancelRequested ? "canceled" : "completed";
      const done = await transaction.batch.updateMany({
        where: { id: batchId, status: "running" },
        data: { status, finishedAt: now },
      });
      if (done.count === 1) events.push(batchEvent("batch.completed", batch, now, { status, counts }));
      continue;
    }
    const due =
      batch.progressEventAt === null ||
      now.getTime() - batch.progressEventAt.getTime() >= options.progressIntervalMs;
    if (!due || batch.status !== "running") continue;
    const claimed = await transaction.batch.updateMany({
      where: {
        id: batchId,
        OR: [
          { progressEventAt: null },
          { progressEventAt: { lte: new Date(now.getTime() - options.progressIntervalMs) } },
        ],
      },
      data: { progressEventAt: now },
    });
    if (claimed.count === 1)
      events.push(batchEvent("batch.progress", batch, now, { status: "running", counts }));
  }
  return events;
}

/**
 * The `batch.completed` event of a batch whose last item just finished, for code
 * that ended it in its own statement (the lifecycle's folded transitions).
 */
export function batchCompletedEvent(
  batch: Pick<
    Batch,
    "id" | "userId" | "webhookUrl" | "total" | "completedCount" | "failedCount" | "canceledCount"
  >,
  status: "completed" | "canceled",
  finishedAt: Date,
): GenqEvent {
  return batchEvent("batch.completed", batch, finishedAt, { status, counts: batchCounts(batch) });
}

function batchEvent(
  type: "batch.progress" | "batch.completed",
  batch: Pick<Batch, "id" | "userId" | "webhookUrl" | "total">,
  timestamp: Date,
  data: { status: string; counts: BatchCounts },
): GenqEvent {
  const finished = data.counts.completed + data.counts.failed + data.counts.canceled;
  return {
    type,
    userId: batch.userId,
    jobId: null,
    batchId: batch.id,
    webhookUrl: batch.webhookUrl,
    timestamp,
    data: {
      id: batch.id,
      object: "batch",
      status: data.status,
      counts: data.counts,
      progress: batch.total === 0 ? 100 : Math.floor((finished / batch.total) * 100),
    },
  };
}

/**
 * The job events of finished jobs. A batch item's events go to the user's
 * endpoints only: the batch's own webhook URL receives batch events, not one call
 * per item.
 */
export function jobFinishedEvents(jobs: readonly FinishedJob[], now: Date = new Date()): GenqEvent[] {
  return jobs.map((job) => ({
    type: `job.${job.status}` as const,
    userId: job.userId,
    jobId: job.id,
    batchId: job.batchId,
    webhookUrl: job.batchId === null ? job.webhookUrl : null,
    timestamp: job.finishedAt ?? now,
    data: {
      id: job.id,
      object: "job",
      type: job.type,
      status: job.status,
      ...(job.batchId === null ? {} : { batchId: job.batchId, itemIndex: job.itemIndex }),
      ...(job.errorCode === null ? {} : { error: { code: job.errorCode, message: job.errorMessage ?? "" } }),
    },
  }));
}
