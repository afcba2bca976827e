import type { OpenAIBatchRecord, OpenAIFileRecord } from "@genq/db";
import { z } from "zod";
import { toBatchId, toFileId } from "./openai-ids.ts";

/** Seconds since the epoch, as OpenAI's timestamps are; null when unset. */
export function unixSeconds(date: Date | null | undefined): number | null {
  return date === null || date === undefined ? null : Math.floor(date.getTime() / 1000);
}

/** OpenAI's FileObject. */
export const OpenAIFileObject = z
  .object({
    id: z.string(),
    object: z.literal("file"),
    bytes: z.number().int(),
    created_at: z.number().int(),
    filename: z.string(),
    purpose: z.enum(["batch", "batch_output"]),
    status: z.enum(["uploaded", "processed", "error"]),
    expires_at: z.number().int().nullable(),
    status_details: z.string().nullable(),
  })
  .meta({
    id: "OpenAIFileObject",
    examples: [
      {
        id: "file-0193a7d2c4e07a3b9f1e2d3c4b5a6978",
        object: "file",
        bytes: 1280,
        created_at: 1764763200,
        filename: "requests.jsonl",
        purpose: "batch",
        status: "processed",
        expires_at: null,
        status_details: null,
      },
    ],
  });
export type OpenAIFileObject = z.infer<typeof OpenAIFileObject>;

/** The answer of `DELETE /files/{id}`. */
export const OpenAIFileDeleted = z.object({
  id: z.string(),
  object: z.literal("file"),
  deleted: z.literal(true),
});

/** OpenAI's batch request counts. */
const RequestCounts = z.object({
  total: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
});

/** One entry of a batch's `errors.data[]`. */
const BatchError = z.object({
  code: z.string(),
  line: z.number().int().nullable(),
  message: z.string(),
  param: z.string().nullable(),
});

/** OpenAI's Batch object. */
export const OpenAIBatchObject = z
  .object({
    id: z.string(),
    object: z.literal("batch"),
    endpoint: z.string(),
    errors: z.object({ object: z.literal("list"), data: z.array(BatchError) }).nullable(),
    input_file_id: z.string(),
    completion_window: z.string(),
    status: z.enum([
      "validating",
      "failed",
      "in_progress",
      "finalizing",
      "completed",
      "expired",
      "cancelling",
      "cancelled",
    ]),
    output_file_id: z.string().nullable(),
    error_file_id: z.string().nullable(),
    created_at: z.number().int(),
    in_progress_at: z.number().int().nullable(),
    expires_at: z.number().int().nullable(),
    finalizing_at: z.number().int().nullable(),
    completed_at: z.number().int().nullable(),
    failed_at: z.number().int().nullable(),
    expired_at: z.number().int().nullable(),
    cancelling_at: z.number().int().nullable(),
    cancelled_at: z.number().int().nullable(),
    request_counts: RequestCounts,
    usage: z
      .object({
        input_tokens: z.number().int(),
        input_tokens_details: z.object({ cached_tokens: z.number().int() }),
        output_tokens: z.number().int(),
        output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
        total_tokens: z.number().int(),
      })
      .nullable(),
    metadata: z.record(z.string(), z.string()).nullable(),
  })
  .meta({ id: "OpenAIBatchObject" });
export type OpenAIBatchObject = z.infer<typeof OpenAIBatchObject>;

/** An OpenAI list page: `data`, `first_id`, `last_id`, `has_more`. */
export function openAIList<T extends z.ZodType>(item: T) {
  return z.object({
    object: z.literal("list"),
    data: z.array(item),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  });
}

/** A page of rows as an OpenAI list. */
export function toOpenAIList<T extends { id: string }>(data: T[], hasMore: boolean) {
  return {
    object: "list" as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: hasMore,
  };
}

/** A file row as OpenAI's FileObject. */
export function toFileView(file: OpenAIFileRecord): OpenAIFileObject {
  return {
    id: toFileId(file.id),
    object: "file",
    bytes: Number(file.bytes),
    created_at: unixSeconds(file.createdAt) ?? 0,
    filename: file.filename,
    purpose: file.purpose === "batch_output" ? "batch_output" : "batch",
    status: "processed",
    expires_at: unixSeconds(file.expiresAt),
    status_details:
      file.invalidCount > 0
        ? `${file.invalidCount} of ${file.lineCount} lines are invalid; a batch of this file fails validation and lists them in errors`
        : null,
  };
}

/** What a batch is doing now, beyond its stored row (read from its genq batch while it runs). */
export interface OpenAIBatchState {
  status: OpenAIBatchObject["status"];
  counts: z.infer<typeof RequestCounts>;
}

/** A batch row (and its live state) as OpenAI's Batch object. */
export function toBatchObject(batch: OpenAIBatchRecord, state: OpenAIBatchState): OpenAIBatchObject {
  const errors = batch.errors as z.infer<typeof BatchError>[] | null;
  const finished = ["completed", "cancelled", "expired"].includes(batch.status);
  const inputTokens = Number(batch.inputTokens);
  const outputTokens = Number(batch.outputTokens);
  return {
    id: toBatchId(batch.id),
    object: "batch",
    endpoint: batch.endpoint,
    errors: errors === null ? null : { object: "list", data: errors },
    input_file_id: toFileId(batch.inputFileId),
    completion_window: batch.completionWindow,
    status: state.status,
    output_file_id: batch.outputFileId === null ? null : toFileId(batch.outputFileId),
    error_file_id: batch.errorFileId === null ? null : toFileId(batch.errorFileId),
    created_at: unixSeconds(batch.createdAt) ?? 0,
    in_progress_at: unixSeconds(batch.inProgressAt),
    expires_at: unixSeconds(batch.expiresAt),
    finalizing_at: unixSeconds(batch.finalizingAt),
    completed_at: unixSeconds(batch.completedAt),
    failed_at: unixSeconds(batch.failedAt),
    expired_at: unixSeconds(batch.expiredAt),
    cancelling_at: unixSeconds(batch.cancellingAt),
    cancelled_at: unixSeconds(batch.cancelledAt),
    request_counts: state.counts,
    usage: finished
      ? {
          input_tokens: inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: inputTokens + outputTokens,
        }
      : null,
    metadata: (batch.metadata as Record<string, string> | null) ?? null,
  };
}
