import { z } from "zod";

/** `WIDTHxHEIGHT` in pixels, e.g. `1024x1024`. */
export const ImageSize = z
  .string()
  .regex(/^[1-9]\d{1,4}x[1-9]\d{1,4}$/, "size must look like 1024x1024 (WIDTHxHEIGHT in pixels)");

/** What an image job asks for; the chosen model's capabilities decide what is accepted. */
export const ImageJobInput = z
  .object({
    prompt: z.string().min(1, "prompt must not be empty").max(32_000),
    /** How many images, 1–10. */
    n: z.number().int().min(1).max(10).default(1),
    size: ImageSize.optional(),
    /** Provider vocabulary: `low`/`medium`/`high` (gpt-image-1), `standard`/`hd` (dall-e-3). */
    quality: z
      .string()
      .regex(/^[a-z0-9]{1,16}$/i, "quality is a word such as standard, hd, low, medium or high")
      .optional(),
    style: z.enum(["vivid", "natural"]).optional(),
    /** For providers that take an aspect ratio instead of a size (Gemini): `16:9`. */
    aspectRatio: z
      .string()
      .regex(/^\d{1,2}:\d{1,2}$/, "aspectRatio must look like 16:9")
      .optional(),
    providerOptions: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  })
  .strict();
export type ImageJobInput = z.infer<typeof ImageJobInput>;

/** One stored image of a completed image job, as kept in the job's result. */
export const StoredImage = z.object({
  index: z.number().int(),
  assetId: z.string(),
  contentType: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  revisedPrompt: z.string().optional(),
});
export type StoredImage = z.infer<typeof StoredImage>;

/** The stored result of a completed image job: references to assets, never bytes. */
export const ImageJobResult = z.object({
  images: z.array(StoredImage),
  provider: z.string(),
  model: z.string(),
  providerRequestId: z.string().optional(),
});
export type ImageJobResult = z.infer<typeof ImageJobResult>;
