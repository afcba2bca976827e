import { z } from "zod";
import { describeProviderOptionIssue, providerOptionIssues } from "./provider-options.ts";

/** `WIDTHxHEIGHT` in pixels, e.g. `1024x1024`. */
export const ImageSize = z
  .string()
  .regex(/^[1-9]\d{1,4}x[1-9]\d{1,4}$/, "size must look like 1024x1024 (WIDTHxHEIGHT in pixels)");

/**
 * What an image job does: `generate` from a prompt, `edit` an uploaded image (with an
 * optional mask) following a prompt, or make a `variation` of an uploaded image.
 */
export const ImageOperation = z.enum(["generate", "edit", "variation"]);
export type ImageOperation = z.infer<typeof ImageOperation>;

/** The id of an upload (`POST /v1/uploads`), as an image job references it. */
const UploadId = z
  .string()
  .regex(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    "must be the id of an upload (POST /v1/uploads)",
  );

/** What an image job asks for; the chosen model's capabilities decide what is accepted. */
export const ImageJobInput = z
  .object({
    operation: ImageOperation.default("generate"),
    /** Required, except for `variation`. */
    prompt: z.string().min(1, "prompt must not be empty").max(32_000).optional(),
    /** The upload to edit or vary; required for `edit` and `variation`. */
    image: UploadId.optional(),
    /** For `edit`: an upload whose transparent pixels mark where to edit (same size as `image`). */
    mask: UploadId.optional(),
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
  .strict()
  .superRefine((input, context) => {
    const issue = (field: string, message: string) =>
      context.addIssue({ code: "custom", path: [field], message });
    if (input.prompt === undefined && input.operation !== "variation") {
      issue("prompt", `prompt is required for operation "${input.operation}" (only "variation" may omit it)`);
    }
    if (input.operation === "generate") {
      if (input.image !== undefined) {
        issue("image", 'image is only for operation "edit" or "variation"; set operation too');
      }
    } else if (input.image === undefined) {
      issue(
        "image",
        `image (an upload id from POST /v1/uploads) is required for operation "${input.operation}"`,
      );
    }
    if (input.mask !== undefined && input.operation !== "edit") {
      issue("mask", 'mask is only for operation "edit"');
    }
    // n, size and quality come from the job's own fields only: never from providerOptions.
    for (const refused of providerOptionIssues(input.providerOptions, "image")) {
      context.addIssue({
        code: "custom",
        path: ["providerOptions", ...refused.path],
        message: describeProviderOptionIssue(refused),
      });
    }
  })
  .meta({
    id: "ImageJobInput",
    description: "What an image job asks for; the chosen model's capabilities decide what is accepted",
    examples: [
      { operation: "generate", prompt: "A lighthouse at dawn, watercolour", n: 1, size: "1024x1024" },
    ],
  });
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
