import { z } from "zod";
import { GenqError } from "./errors.ts";
import { ImageJobInput } from "./image-job.ts";
import { CreateTextJobRequest, JobType } from "./job.ts";
import { PRIORITY_NAMES } from "./priorities.ts";
import { findUnstorableJson } from "./storable-json.ts";
import { TextJobInput } from "./text-job.ts";

/** The most items one batch may hold (valid and invalid together). */
export const MAX_BATCH_ITEMS = 100_000;

/** How many invalid items a batch keeps (and answers with); the count is always exact. */
export const MAX_LISTED_INVALID_ITEMS = 1_000;

/** A batch's lifecycle: running → completed (some items may have failed) | canceled. */
export const BatchStatus = z.enum(["running", "completed", "canceled"]);
export type BatchStatus = z.infer<typeof BatchStatus>;

const { provider, model, metadata, webhook } = CreateTextJobRequest.shape;

/**
 * How a batch's items run: `online` (the default) through the queues at once, or
 * `economy`: through the providers' own batch APIs (OpenAI Batch, Anthropic Message
 * Batches, Gemini batch mode) at their batch price, within their window (up to 24 hours).
 */
export const BatchTier = z.enum(["online", "economy"]);
export type BatchTier = z.infer<typeof BatchTier>;

/**
 * Everything a batch request says besides its items: the JSON body's other fields,
 * or the query parameters of a JSONL body. Batches default to `low` priority, so
 * interactive jobs (default `normal`) go first.
 */
export const BatchOptions = z
  .object({
    type: JobType,
    priority: z.enum(PRIORITY_NAMES).default("low"),
    provider,
    model,
    metadata,
    webhook,
    /** Default `online`; absent from the request's fingerprint when not given. */
    tier: BatchTier.optional(),
  })
  .strict();
export type BatchOptions = z.infer<typeof BatchOptions>;

/**
 * Refuses a tier the batch cannot have: the economy tier runs text batches only
 * (the providers' batch APIs take chat requests; image batches run online).
 */
export function checkBatchTier(options: { type: JobType; tier?: BatchTier | undefined }): void {
  if (options.tier === "economy" && options.type !== "text") {
    throw new GenqError(
      "invalid_request",
      'tier: "economy" runs text batches only; send image batches as "online"',
      {
        details: { field: "tier", type: options.type },
      },
    );
  }
}

/**
 * `POST /v1/batches` JSON body. Items are checked one by one (see
 * {@link validateBatchItem}), so one bad item does not reject the batch.
 */
export const CreateBatchRequest = BatchOptions.extend({
  items: z
    .array(z.unknown())
    .min(1, "items must hold at least one item")
    .max(MAX_BATCH_ITEMS, `a batch holds at most ${MAX_BATCH_ITEMS} items`),
}).strict();
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>;

/** An item rejected at submission, by its position in the submitted items (from 0). */
export const InvalidBatchItem = z.object({ index: z.number().int(), message: z.string() });
export type InvalidBatchItem = z.infer<typeof InvalidBatchItem>;

/** One submitted item after validation: its input, or why it was rejected. */
export type CheckedBatchItem =
  | {
      index: number;
      valid: true;
      input: TextJobInput | ImageJobInput;
      /** This item's model, when items choose theirs (OpenAI batch lines); else the batch's. */
      model?: string | undefined;
      /** This item's job metadata (an OpenAI line's `custom_id`); else none. */
      metadata?: Record<string, unknown> | undefined;
    }
  | { index: number; valid: false; message: string };

/**
 * Validates one batch item against the input schema of the batch's type. The
 * message names the first problem with its path inside the item.
 */
export function validateBatchItem(type: JobType, index: number, item: unknown): CheckedBatchItem {
  // First, as for whole requests: hostile nesting must not reach the schema.
  const problem = findUnstorableJson(item);
  if (problem !== undefined) {
    const path = problem.path.length === 0 ? "" : `${problem.path.join(".")}: `;
    return { index, valid: false, message: `${path}${problem.message}` };
  }
  const parsed = type === "text" ? TextJobInput.safeParse(item) : ImageJobInput.safeParse(item);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined || issue.path.length === 0 ? "" : `${issue.path.join(".")}: `;
    return { index, valid: false, message: `${path}${issue?.message ?? "invalid item"}` };
  }
  return { index, valid: true, input: parsed.data };
}
