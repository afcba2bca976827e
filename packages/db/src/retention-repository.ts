import type { Database } from "./client.ts";

/** A chunk of expired jobs, and the object keys of their stored images. */
export interface ExpiredJobs {
  ids: string[];
  assetKeys: string[];
}

/** An expired upload: its row id and object key. */
export interface ExpiredUpload {
  id: string;
  key: string;
}

/**
 * The smallest UUIDv7 of the millisecond `time`: every id minted before `time` sorts
 * below it. genq's ids are UUIDv7 (`newId`), and each row's id is minted no later
 * than its `created_at`, so `id < idBoundary(cutoff)` holds for every row created
 * before `cutoff`: the primary key finds old rows without an index on a timestamp.
 */
export function idBoundary(time: Date): string {
  const hex = Math.max(0, Math.floor(time.getTime())).toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

const FIRST_ID = "00000000-0000-0000-0000-000000000000";

/**
 * The reads and deletes of data retention, each bounded to one chunk so no statement
 * holds locks for long. Old rows are found through the primary key (see
 * {@link idBoundary}); the timestamp conditions decide. Usage records are never
 * deleted here: they are the billing history and outlive their jobs.
 */
export class RetentionRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /**
   * Up to `limit` jobs that finished (completed, failed, canceled) before `cutoff`,
   * after the id `after`, in id order; a batch's items only once the whole batch
   * finished before `cutoff`, so a batch never loses items while it runs.
   */
  async listExpiredJobs(cutoff: Date, limit: number, after = FIRST_ID): Promise<ExpiredJobs> {
    const rows = await this.#db.$queryRaw<Array<{ id: string }>>`
      SELECT j.id FROM jobs j
       WHERE j.id > ${after}::uuid AND j.id < ${idBoundary(cutoff)}::uuid
         AND j.status IN ('completed', 'failed', 'canceled')
         AND j.finished_at < ${cutoff}
         AND (j.batch_id IS NULL OR EXISTS (
               SELECT 1 FROM batches b
                WHERE b.id = j.batch_id AND b.status <> 'running' AND b.finished_at < ${cutoff}))
       ORDER BY j.id
       LIMIT ${limit}`;
    const ids = rows.map((row) => row.id);
    if (ids.length === 0) return { ids, assetKeys: [] };
    const assets = await this.#db.asset.findMany({ where: { jobId: { in: ids } }, select: { key: true } });
    return { ids, assetKeys: assets.map((asset) => asset.key) };
  }

  /**
   * Deletes jobs (their objects must be deleted first), with their provider calls,
   * asset rows and quota reservations; their usage records stay.
   */
  async deleteJobs(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.#db.job.deleteMany({ where: { id: { in: [...ids] } } })).count;
  }

  /** Deletes up to `limit` batches that finished before `cutoff` and have no items left. */
  async deleteEmptyBatches(cutoff: Date, limit: number): Promise<number> {
    return this.#db.$executeRaw`
      DELETE FROM batches WHERE id IN (
        SELECT b.id FROM batches b
         WHERE b.id < ${idBoundary(cutoff)}::uuid AND b.status <> 'running' AND b.finished_at < ${cutoff}
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id)
         ORDER BY b.id
         LIMIT ${limit})`;
  }

  /** Deletes up to `limit` provider calls recorded before `cutoff` (the operators' call log). */
  async deleteProviderCalls(cutoff: Date, limit: number): Promise<number> {
    return this.#db.$executeRaw`
      DELETE FROM provider_calls WHERE id IN (
        SELECT id FROM provider_calls
         WHERE id < ${idBoundary(cutoff)}::uuid AND created_at < ${cutoff}
         ORDER BY id
         LIMIT ${limit})`;
  }

  /**
   * Deletes up to `limit` webhook messages created before `cutoff` that are no longer
   * pending (delivered, failed or canceled), with their delivery logs.
   */
  async deleteWebhookMessages(cutoff: Date, limit: number): Promise<number> {
    return this.#db.$executeRaw`
      DELETE FROM webhook_messages WHERE id IN (
        SELECT id FROM webhook_messages
         WHERE id < ${idBoundary(cutoff)}::uuid AND created_at < ${cutoff} AND status <> 'pending'
         ORDER BY id
         LIMIT ${limit})`;
  }

  /**
   * Up to `limit` uploads made before `cutoff`, after the id `after`, in id order;
   * an upload a queued or running job still names (as `image` or `mask`) is kept.
   */
  async listExpiredUploads(cutoff: Date, limit: number, after = FIRST_ID): Promise<ExpiredUpload[]> {
    return this.#db.$queryRaw<ExpiredUpload[]>`
      SELECT u.id, u.key FROM uploads u
       WHERE u.id > ${after}::uuid AND u.id < ${idBoundary(cutoff)}::uuid AND u.created_at < ${cutoff}
         AND NOT EXISTS (
               SELECT 1 FROM jobs j
                WHERE j.user_id = u.user_id AND j.status IN ('queued', 'active')
                  AND (j.input->>'image' = u.id::text OR j.input->>'mask' = u.id::text))
       ORDER BY u.id
       LIMIT ${limit}`;
  }

  /** Deletes upload rows (after their objects were deleted). */
  async deleteUploads(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.#db.upload.deleteMany({ where: { id: { in: [...ids] } } })).count;
  }
}
