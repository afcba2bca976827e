import { ImageJobInput, type JobType, TextJobInput, TextJobResult } from "@genq/core";
import { z } from "zod";

/** A completed text job's result as the API shows it. */
export const TextJobResultView = TextJobResult.extend({
  type: z.literal("text"),
  cached: z.boolean().optional().describe("Served from the result cache: no provider was called"),
  cachedFrom: z.string().optional().describe("The job whose provider call produced a cached result"),
  tier: z
    .enum(["online", "economy"])
    .optional()
    .describe("`economy`: answered through the provider's batch API, at its batch price"),
}).meta({
  id: "TextJobResult",
  examples: [
    {
      type: "text",
      text: "Jobs wait in line / priorities decide / the queue never sleeps",
      finishReason: "stop",
      provider: "openai",
      model: "gpt-4o-mini",
    },
  ],
});

/** One image of a completed image job; `url` is minted when one job is read (`GET /v1/jobs/{id}`, batch results). */
const JobImage = z
  .object({
    index: z.number().int(),
    url: z
      .string()
      .nullable()
      .optional()
      .describe("A signed link to the image; null once retention deleted it"),
    urlExpiresAt: z.string().nullable().optional(),
    assetId: z.string().optional().describe("In lists, where no link is minted"),
    contentType: z.string(),
    bytes: z.number().int(),
    sha256: z.string().describe("SHA-256 of the stored bytes, hex"),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    revisedPrompt: z.string().optional(),
  })
  .meta({ id: "JobImage" });

/** A completed image job's result as the API shows it: links to the stored images, never bytes. */
export const ImageJobResultView = z
  .object({
    type: z.literal("image"),
    images: z.array(JobImage),
    provider: z.string(),
    model: z.string(),
    providerRequestId: z.string().optional(),
  })
  .meta({ id: "ImageJobResult" });

/** A job's result, told apart by `type` (the job's type). */
export const JobResultView = z.discriminatedUnion("type", [TextJobResultView, ImageJobResultView]).meta({
  id: "JobResult",
  description: "The result of a completed job; `type` is the job's type",
});

/** A job's input as stored: the request's `input`, with defaults filled in. */
export const JobInputView = z.union([TextJobInput, ImageJobInput]).meta({
  id: "AnyJobInput",
  description: "The job's `input` as submitted (`TextJobInput` or `ImageJobInput`, as `type` says)",
});

/** A stored result with the job's `type`, so clients can tell text from image results by the result alone. */
export function toResultView(type: JobType, result: unknown): unknown {
  if (result === null || result === undefined) return null;
  if (typeof result !== "object" || Array.isArray(result)) return result;
  return { type, ...result };
}
