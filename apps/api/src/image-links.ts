import { ImageJobResult } from "@genq/core";
import type { AssetRecord } from "@genq/db";
import type { ObjectStorage } from "@genq/storage";
import { z } from "zod";

/** One image of a completed image job, with a link minted when the job was read. */
export const ImageView = z
  .object({
    index: z.number().int(),
    url: z.string().nullable().describe("A signed link to the image; null once retention deleted it"),
    urlExpiresAt: z.string().nullable(),
    contentType: z.string(),
    bytes: z.number().int(),
    sha256: z.string().describe("SHA-256 of the stored bytes, hex"),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    revisedPrompt: z.string().optional(),
  })
  .meta({ id: "Image" });
export type ImageView = z.infer<typeof ImageView>;

/**
 * The result of an image job with fresh signed links: the stored result lists the
 * images, the asset rows know where they are. Links are minted at read time, so
 * none is ever stored, queued or sent in a webhook.
 */
export async function withImageLinks(
  result: unknown,
  assets: AssetRecord[],
  storage: ObjectStorage,
  ttlSeconds: number,
  now: Date = new Date(),
): Promise<unknown> {
  const parsed = ImageJobResult.safeParse(result);
  if (!parsed.success) return result;
  const byIndex = new Map(assets.map((asset) => [asset.index, asset]));
  // Both drivers count the lifetime from the signing time cut to whole seconds (local
  // `expires`, S3 `X-Amz-Date`): the expiry shown must not be later than the one enforced.
  const urlExpiresAt = new Date(Math.floor(now.getTime() / 1_000) * 1_000 + ttlSeconds * 1_000).toISOString();
  const images = await Promise.all(
    parsed.data.images.map(async (image): Promise<ImageView> => {
      const asset = byIndex.get(image.index);
      const extension = image.contentType.split("/")[1] ?? "bin";
      const url =
        asset === undefined
          ? null
          : await storage.signedGetUrl(asset.key, {
              expiresInSeconds: ttlSeconds,
              filename: `image-${image.index}.${extension === "jpeg" ? "jpg" : extension}`,
            });
      return {
        index: image.index,
        url,
        urlExpiresAt: url === null ? null : urlExpiresAt,
        contentType: image.contentType,
        bytes: image.bytes,
        sha256: image.sha256,
        ...(image.width === undefined ? {} : { width: image.width }),
        ...(image.height === undefined ? {} : { height: image.height }),
        ...(image.revisedPrompt === undefined ? {} : { revisedPrompt: image.revisedPrompt }),
      };
    }),
  );
  return { ...parsed.data, images };
}
