import { newId } from "@genq/core";
import type { Database } from "./client.ts";

/** One stored image of a job. */
export interface AssetRecord {
  id: string;
  jobId: string;
  userId: string;
  index: number;
  key: string;
  contentType: string;
  bytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  revisedPrompt: string | null;
  createdAt: Date;
  expiresAt: Date | null;
}

/** What {@link AssetRepository.saveForJob} writes for one image. */
export interface AssetInput {
  index: number;
  key: string;
  contentType: string;
  bytes: number;
  sha256: string;
  width?: number | undefined;
  height?: number | undefined;
  revisedPrompt?: string | undefined;
  expiresAt?: Date | undefined;
}

/** Asset rows: one per stored image, keyed by (job, index). */
export class AssetRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /**
   * Writes the job's asset rows, replacing rows of an earlier attempt with the same
   * index (the object key is the same, its bytes were just overwritten), so a job
   * has exactly one row per image however often it ran.
   */
  async saveForJob(job: { jobId: string; userId: string }, assets: AssetInput[]): Promise<AssetRecord[]> {
    return this.#db.$transaction(
      assets.map((asset) => {
        const fields = {
          key: asset.key,
          contentType: asset.contentType,
          bytes: asset.bytes,
          sha256: asset.sha256,
          width: asset.width ?? null,
          height: asset.height ?? null,
          revisedPrompt: asset.revisedPrompt ?? null,
          expiresAt: asset.expiresAt ?? null,
        };
        return this.#db.asset.upsert({
          where: { jobId_index: { jobId: job.jobId, index: asset.index } },
          create: { id: newId(), jobId: job.jobId, userId: job.userId, index: asset.index, ...fields },
          update: fields,
        });
      }),
    );
  }

  /** The job's assets, by index. */
  async listForJob(jobId: string): Promise<AssetRecord[]> {
    return this.#db.asset.findMany({ where: { jobId }, orderBy: { index: "asc" } });
  }

  /** Assets whose retention ended before `now`, oldest first. */
  async listExpired(now: Date, limit: number): Promise<AssetRecord[]> {
    return this.#db.asset.findMany({
      where: { expiresAt: { lt: now } },
      orderBy: { expiresAt: "asc" },
      take: limit,
    });
  }

  /** Deletes asset rows (after their objects were deleted). */
  async deleteMany(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.#db.asset.deleteMany({ where: { id: { in: ids } } })).count;
  }
}
