import { JobStatus, JobType, PRIORITY_NAMES, priorityName } from "@genq/core";
import type { JobRecord } from "@genq/db";
import { z } from "zod";

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
    attempts: z.number().int().describe("How many times a worker started the job"),
    cancelRequested: z.boolean(),
    input: z.unknown(),
    metadata: z.unknown().nullable(),
    result: z
      .unknown()
      .nullable()
      .describe("For text jobs: {text, finishReason, provider, model, providerRequestId}"),
    error: z
      .object({ code: z.string(), message: z.string() })
      .nullable()
      .describe("Why the job failed; on a queued job, why the last attempt failed before a retry"),
    usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }).nullable(),
    costMicroUsd: z.number().int().nullable().describe("Cost in millionths of a US dollar"),
    createdAt: z.string(),
    queuedAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    links: z.object({ self: z.string(), cancel: z.string() }),
  })
  .meta({ id: "Job" });
export type JobView = z.infer<typeof JobView>;

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
    attempts: job.attempts,
    cancelRequested: job.cancelRequested,
    input: job.input,
    metadata: job.metadata ?? null,
    result: job.result ?? null,
    error: job.errorCode === null ? null : { code: job.errorCode, message: job.errorMessage ?? "" },
    usage:
      job.inputTokens === null || job.outputTokens === null
        ? null
        : { inputTokens: job.inputTokens, outputTokens: job.outputTokens },
    costMicroUsd: job.costMicroUsd === null ? null : Number(job.costMicroUsd),
    createdAt: job.createdAt.toISOString(),
    queuedAt: job.queuedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    links: { self, cancel: `${self}/cancel` },
  };
}
