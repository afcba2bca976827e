import { batchCounts, type Database } from "@genq/db";

/** Reads a running batch's progress event data from its counters; null once it is not running. */
export type BatchProgressReader = (batchId: string) => Promise<Record<string, unknown> | null>;

/**
 * A {@link BatchProgressReader} over Postgres: the same data as the `batch.progress`
 * event of the finished-job hooks (id, status, counts, percent).
 */
export function createBatchProgressReader(db: Database): BatchProgressReader {
  return async (batchId) => {
    const batch = await db.batch.findUnique({ where: { id: batchId } });
    if (batch === null || batch.status !== "running") return null;
    const counts = batchCounts(batch);
    const finished = counts.completed + counts.failed + counts.canceled;
    return {
      id: batch.id,
      object: "batch",
      status: "running",
      counts,
      progress: batch.total === 0 ? 100 : Math.floor((finished / batch.total) * 100),
    };
  };
}
