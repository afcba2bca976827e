import type { AssetRepository } from "@genq/db";
import type { ObjectStorage } from "@genq/storage";

/**
 * Deletes assets whose retention ended: first their objects, then their rows, so a
 * crash in between leaves a row pointing at nothing (deleted again next time) and
 * never an object nobody knows about.
 */
export async function sweepExpiredAssets(options: {
  storage: ObjectStorage;
  assets: AssetRepository;
  now?: Date;
  batchSize?: number;
}): Promise<{ deleted: number }> {
  const now = options.now ?? new Date();
  const batchSize = options.batchSize ?? 500;
  let deleted = 0;
  for (;;) {
    const expired = await options.assets.listExpired(now, batchSize);
    if (expired.length === 0) break;
    await options.storage.deleteMany(expired.map((asset) => asset.key));
    deleted += await options.assets.deleteMany(expired.map((asset) => asset.id));
    if (expired.length < batchSize) break;
  }
  return { deleted };
}
