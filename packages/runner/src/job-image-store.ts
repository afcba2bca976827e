import { GenqError, type StoredImage } from "@genq/core";
import type { AssetRepository } from "@genq/db";
import { imageDimensions } from "@genq/providers";
import type { ObjectStorage } from "@genq/storage";
import type { JobImageStore } from "./job-processor-options.ts";

/** Options for {@link createJobImageStore}. */
export interface JobImageStoreOptions {
  storage: ObjectStorage;
  assets: AssetRepository;
  /** Days an image is kept after it was stored; 0 keeps it forever. */
  retentionDays: number;
  now?: () => Date;
}

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
};

/** The prefix of every object key of a job's images. */
export function imageKeyPrefix(jobId: string): string {
  return `images/${jobId}/`;
}

/** The object key of a job's image: derived from the job and index, so a retry overwrites it. */
export function imageObjectKey(jobId: string, index: number, mediaType: string): string {
  return `${imageKeyPrefix(jobId)}${index}.${EXTENSIONS[mediaType] ?? "bin"}`;
}

/**
 * Stores a job's images in object storage, then records one asset row per image.
 * Keys and rows are keyed by job and index: a job retried after a crash mid-upload
 * overwrites the same objects and rows, so it ends with exactly `n` assets.
 */
export function createJobImageStore(options: JobImageStoreOptions): JobImageStore {
  return {
    async storeJobImages({ jobId, userId, images }) {
      const now = options.now?.() ?? new Date();
      const expiresAt =
        options.retentionDays > 0 ? new Date(now.getTime() + options.retentionDays * 86_400_000) : undefined;
      const stored = await Promise.all(
        images.map(async (image, index) => {
          const key = imageObjectKey(jobId, index, image.mediaType);
          const put = await options.storage.put(key, image.bytes, {
            contentType: image.mediaType,
            contentLength: image.bytes.byteLength,
          });
          const dimensions = imageDimensions(image.bytes);
          return {
            index,
            key,
            contentType: image.mediaType,
            bytes: put.bytes,
            sha256: put.sha256,
            width: dimensions?.width,
            height: dimensions?.height,
            revisedPrompt: image.revisedPrompt,
            expiresAt,
          };
        }),
      );
      const rows = await options.assets.saveForJob({ jobId, userId }, stored);
      await removeEarlierAttempts(options, jobId, stored);
      return rows.map(
        (row): StoredImage => ({
          index: row.index,
          assetId: row.id,
          contentType: row.contentType,
          bytes: row.bytes,
          sha256: row.sha256,
          ...(row.width === null ? {} : { width: row.width }),
          ...(row.height === null ? {} : { height: row.height }),
          ...(row.revisedPrompt === null ? {} : { revisedPrompt: row.revisedPrompt }),
        }),
      );
    },

    async readUpload(key) {
      try {
        const object = await options.storage.get(key);
        const chunks: Buffer[] = [];
        for await (const chunk of object.body) chunks.push(chunk as Buffer);
        return new Uint8Array(Buffer.concat(chunks));
      } catch (error) {
        // Gone for good (deleted with its user): retrying the job cannot bring it back.
        if (GenqError.is(error) && error.code === "not_found") {
          throw new GenqError("invalid_request", "an uploaded image of this job no longer exists", {
            cause: error,
          });
        }
        throw error;
      }
    },
  };
}

/**
 * Deletes what an earlier attempt stored and this one did not overwrite: images in
 * another format (the key's extension differs, e.g. after a fallback to another
 * provider) or beyond this attempt's count. Objects go first, then rows, as in retention.
 */
async function removeEarlierAttempts(
  options: JobImageStoreOptions,
  jobId: string,
  stored: Array<{ key: string }>,
): Promise<void> {
  const current = new Set(stored.map((image) => image.key));
  const staleKeys: string[] = [];
  for await (const key of options.storage.list(imageKeyPrefix(jobId))) {
    if (!current.has(key)) staleKeys.push(key);
  }
  if (staleKeys.length > 0) await options.storage.deleteMany(staleKeys);
  const staleRows = (await options.assets.listForJob(jobId)).filter((row) => row.index >= stored.length);
  await options.assets.deleteMany(staleRows.map((row) => row.id));
}
