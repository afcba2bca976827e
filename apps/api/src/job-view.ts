import { JobStatus, JobType, PRIORITY_NAMES, priorityName, publicErrorMessage } from "@genq/core";
import type { JobProviderCall, JobRecord } from "@genq/db";
import { z } from "zod";
import { JobQueueView } from "./job-queue-view.ts";
import { toResultView } from "./job-result-view.ts";
import { documentedAs } from "./openapi/documented-as.ts";

/** A job as the API shows it. */
export const JobView = z
  .object({
    id: z.string(),
    object: z.literal("job"),
    type: JobType,
    status: JobStatus,
    priority: z.enum(PRIORITY_NAMES),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    progress: z.number().int().describe("0–100"),
    attempts: z
      .number()
      .int()
      .describe(
        "How many attempts the job spent (runs handed back because every provider was rate limited or unavailable do not count)",
      ),
    cancelRequested: z.boolean(),
    input: documentedAs("AnyJobInput", "input"),
    metadata: documentedAs("JobMetadata").nullable(),
    result: documentedAs("JobResult").nullable().describe("Set once the job completed"),
    error: z
      .object({ code: z.string(), message: z.string() })
      .nullable()
      .describe("Why the job failed; on a queued job, why the last attempt failed before a retry"),
    usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }).nullable(),
    costMicroUsd: z.number().int().nullable().describe("Cost in millionths of a US dollar"),
    priceVersion: z
      .string()
      .nullable()
      .describe("The version of the price list `costMicroUsd` was computed with"),
    createdAt: z.string(),
    queuedAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    batchId: z.string().nullable().describe("The batch the job is an item of; null for a single job"),
    itemIndex: z.number().int().nullable().describe("The job's position in its batch's items, from 0"),
    webhook: z.object({ url: z.string() }).nullable().describe("The per-request webhook, if any"),
    links: z.object({ self: z.string(), cancel: z.string() }),
  })
  .meta({ id: "Job" });
export type JobView = z.infer<typeof JobView>;

/** One provider call of a job attempt, as the API shows it. */
export const ProviderCallView = z
  .object({
    attempt: z.number().int().describe("The job attempt that made the call, from 1"),
    seq: z.number().int().describe("The call's order within its attempt, from 1"),
    provider: z.string(),
    model: z.string(),
    keyId: z.string().optional().describe("The configured id of the provider key used"),
    startedAt: z.string(),
    latencyMs: z.number().int(),
    outcome: z
      .enum(["ok", "error", "skipped"])
      .describe("`skipped`: not called (circuit open, rate limited or no key available)"),
    errorCode: z.string().optional(),
    errorMessage: z
      .string()
      .optional()
      .describe(
        "The generic message of `errorCode` (operators see the provider's text in the admin call log)",
      ),
    inputTokens: z.number().int().optional(),
    outputTokens: z.number().int().optional(),
  })
  .meta({ id: "ProviderCall" });
export type ProviderCallView = z.infer<typeof ProviderCallView>;

/** A single job with its provider calls, as `GET /v1/jobs/:id` shows it. */
export const JobDetailView = JobView.extend({
  calls: z
    .array(ProviderCallView)
    .describe("Every provider call of every attempt (retries, fallbacks), by attempt, then seq"),
  queue: JobQueueView.nullable().describe("Where the job stands in its queue while `queued`; null otherwise"),
}).meta({ id: "JobDetail" });
export type JobDetailView = z.infer<typeof JobDetailView>;

/** Builds the API view of a job row; `baseUrl` prefixes links (empty for relative links). */
export function toJobView(job: JobRecord, baseUrl: string): JobView {
  const self = `${baseUrl}/v1/jobs/${job.id}`;
  return {
    id: job.id,
    object: "job",
    type: job.type,
    status: job.status,
    priority: priorityName(job.priority),
    provider: job.provider,
    model: job.model,
    progress: job.progress,
    // Runs postponed because every provider was limited or resting are not attempts.
    attempts: job.attempts - job.postponements,
    cancelRequested: job.cancelRequested,
    input: job.input,
    metadata: job.metadata ?? null,
    result: toResultView(job.type, job.result),
    error: job.errorCode === null ? null : { code: job.errorCode, message: job.errorMessage ?? "" },
    usage:
      job.inputTokens === null || job.outputTokens === null
        ? null
        : { inputTokens: job.inputTokens, outputTokens: job.outputTokens },
    costMicroUsd: job.costMicroUsd === null ? null : Number(job.costMicroUsd),
    priceVersion: job.priceVersion,
    createdAt: job.createdAt.toISOString(),
    queuedAt: job.queuedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    batchId: job.batchId,
    itemIndex: job.itemIndex,
    webhook: job.webhookUrl === null ? null : { url: job.webhookUrl },
    links: { self, cancel: `${self}/cancel` },
  };
}

/** Builds the API view of a job row with its provider calls (from `JobRepository.listCalls`). */
export function toJobDetailView(
  job: JobRecord,
  calls: readonly JobProviderCall[],
  baseUrl: string,
  queue: JobQueueView | null = null,
): JobDetailView {
  return { ...toJobView(job, baseUrl), calls: calls.map((call) => toProviderCallView(call)), queue };
}

/**
 * Builds the API view of one provider call. Users get `errorMessage` as the generic
 * message of the call's code: a provider's text can name internal hosts or keys.
 * Operators (`details: true`) get the text the provider answered.
 */
export function toProviderCallView(
  call: JobProviderCall,
  options: { details?: boolean } = {},
): ProviderCallView {
  const errorMessage =
    call.errorCode === undefined || options.details === true
      ? call.errorMessage
      : publicErrorMessage(call.errorCode);
  return {
    attempt: call.jobAttempt,
    seq: call.seq,
    provider: call.provider,
    model: call.model,
    ...(call.keyId === undefined ? {} : { keyId: call.keyId }),
    startedAt: call.startedAt.toISOString(),
    latencyMs: call.latencyMs,
    outcome: call.outcome,
    ...(call.errorCode === undefined ? {} : { errorCode: call.errorCode }),
    ...(errorMessage === undefined ? {} : { errorMessage }),
    ...(call.inputTokens === undefined ? {} : { inputTokens: call.inputTokens }),
    ...(call.outputTokens === undefined ? {} : { outputTokens: call.outputTokens }),
  };
}
