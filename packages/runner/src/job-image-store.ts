import type { StoredImage } from "@genq/core";
import type { AssetRepository } from "@genq/db";
import { imageDimensions } from "@genq/providers";
import type { ObjectStorage } from "@genq/storage";
import type { JobImageStore } from "./job-processor.ts";

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

/** The object key of a job's image: derived from the job and index, so a retry overwrites it. */
export function imageObjectKey(jobId: string, index: number, mediaType: string): string {
  return `images/${jobId}/${index}.${EXTENSIONS[mediaType] ?? "bin"}`;
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
  };
}
