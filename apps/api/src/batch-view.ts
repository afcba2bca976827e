import {
  BatchStatus,
  BatchTier,
  InvalidBatchItem,
  JobStatus,
  JobType,
  PRIORITY_NAMES,
  priorityName,
} from "@genq/core";
import { type BatchCost, type BatchRecord, type BatchResultRow, batchCounts } from "@genq/db";
import { z } from "zod";
import { toResultView } from "./job-result-view.ts";
import { documentedAs } from "./openapi/documented-as.ts";

/** A batch as the API shows it. */
export const BatchView = z
  .object({
    id: z.string(),
    object: z.literal("batch"),
    type: JobType,
    status: BatchStatus.describe(
      "`running` until every item finished; then `completed` (some items may have failed) or `canceled`",
    ),
    priority: z.enum(PRIORITY_NAMES),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    metadata: documentedAs("JobMetadata").nullable(),
    webhook: z.object({ url: z.string() }).nullable(),
    cancelRequested: z.boolean(),
    tier: BatchTier.describe(
      "`economy`: items run on the providers' batch APIs at their batch price (up to 24 hours)",
    ),
    cost: z
      .object({
        totalMicroUsd: z
          .number()
          .int()
          .describe("What the finished items cost (economy items at batch prices)"),
        onlineMicroUsd: z.number().int().describe("What the same tokens would have cost online"),
        savingsMicroUsd: z.number().int().describe("`onlineMicroUsd − totalMicroUsd`"),
      })
      .nullable()
      .describe("Economy batches on `GET /v1/batches/{id}`; null otherwise"),
    counts: z.object({
      total: z.number().int().describe("Valid items (each a job)"),
      queued: z
        .number()
        .int()
        .describe("Items not started yet (held back by the fair dispatcher or waiting)"),
      active: z.number().int().describe("Items running now"),
      completed: z.number().int(),
      failed: z.number().int(),
      canceled: z.number().int(),
    }),
    progress: z.number().int().describe("Finished items in percent, 0–100"),
    invalidItems: z
      .array(InvalidBatchItem)
      .describe("Items rejected at submission, by their index in the request (the first 1,000)"),
    createdAt: z.string(),
    startedAt: z.string().nullable().describe("When the first item was released to the workers"),
    finishedAt: z.string().nullable(),
    etaSeconds: z
      .number()
      .int()
      .nullable()
      .describe("Estimated seconds to finish, from the rate since `startedAt`; null while unknown"),
    links: z.object({
      self: z.string(),
      results: z.string(),
      resultsJsonl: z.string(),
      failedItems: z.string(),
      cancel: z.string(),
      events: z.string(),
    }),
  })
  .meta({ id: "Batch" });
export type BatchView = z.infer<typeof BatchView>;

/** The answer to `POST /v1/batches`: the batch, with the exact count of rejected items. */
export const BatchAcceptedView = BatchView.extend({
  invalidCount: z
    .number()
    .int()
    .describe("How many items were rejected (all of them, even past the first 1,000)"),
}).meta({ id: "BatchAccepted" });
export type BatchAcceptedView = z.infer<typeof BatchAcceptedView>;

/** One item of a batch with its outcome, as the results pages show it. */
export const BatchResultView = z
  .object({
    itemIndex: z.number().int().describe("The item's position in the submitted items, from 0"),
    jobId: z.string(),
    status: JobStatus,
    result: documentedAs("JobResult")
      .nullable()
      .describe("As on the job; image results carry fresh signed links"),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }).nullable(),
    costMicroUsd: z.number().int().nullable(),
  })
  .meta({ id: "BatchItemResult" });
export type BatchResultView = z.infer<typeof BatchResultView>;

/**
 * Builds the API view of a batch row. `active` comes from a count of running
 * items (the counters only know finished ones); `now` dates the ETA.
 */
export function toBatchView(
  batch: BatchRecord,
  active: number,
  baseUrl: string,
  now = new Date(),
  cost: BatchCost | null = null,
): BatchView {
  const counts = batchCounts(batch);
  const finished = counts.completed + counts.failed + counts.canceled;
  const self = `${baseUrl}/v1/batches/${batch.id}`;
  return {
    id: batch.id,
    object: "batch",
    type: batch.type,
    status: batch.status,
    priority: priorityName(batch.priority),
    provider: batch.provider,
    model: batch.model,
    metadata: batch.metadata ?? null,
    webhook: batch.webhookUrl === null ? null : { url: batch.webhookUrl },
    cancelRequested: batch.cancelRequested,
    tier: batch.tier === "economy" ? "economy" : "online",
    cost,
    counts: {
      total: counts.total,
      queued: Math.max(0, counts.queued - active),
      active,
      completed: counts.completed,
      failed: counts.failed,
      canceled: counts.canceled,
    },
    progress: batch.total === 0 ? 100 : Math.floor((finished / batch.total) * 100),
    invalidItems: (batch.invalidItems as InvalidBatchItem[] | null) ?? [],
    createdAt: batch.createdAt.toISOString(),
    startedAt: batch.startedAt?.toISOString() ?? null,
    finishedAt: batch.finishedAt?.toISOString() ?? null,
    etaSeconds: etaSeconds(batch, finished, now),
    links: {
      self,
      results: `${self}/results`,
      resultsJsonl: `${self}/results.jsonl`,
      failedItems: `${self}/results?status=failed`,
      cancel: `${self}/cancel`,
      events: `${self}/events`,
    },
  };
}

function etaSeconds(batch: BatchRecord, finished: number, now: Date): number | null {
  if (batch.status !== "running") return 0;
  if (batch.startedAt === null || finished === 0) return null;
  const elapsedSeconds = (now.getTime() - batch.startedAt.getTime()) / 1_000;
  if (elapsedSeconds <= 0) return null;
  return Math.ceil((batch.total - finished) / (finished / elapsedSeconds));
}

/** Builds the results view of one item (image links are added by the caller). */
export function toBatchResultView(row: BatchResultRow): BatchResultView {
  return {
    itemIndex: row.itemIndex ?? 0,
    jobId: row.id,
    status: row.status,
    result: toResultView(row.type, row.result),
    error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? "" },
    usage:
      row.inputTokens === null || row.outputTokens === null
        ? null
        : { inputTokens: row.inputTokens, outputTokens: row.outputTokens },
    costMicroUsd: row.costMicroUsd === null ? null : Number(row.costMicroUsd),
  };
}
