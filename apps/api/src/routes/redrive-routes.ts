import { isId, NotFoundError } from "@genq/core";
import { BatchRepository, JobSearch } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { BatchView, toBatchView } from "../batch-view.ts";
import { JobView, toJobView } from "../job-view.ts";
import { SUBMISSION_ROUTE } from "../plugins/submission-rate-limit.ts";
import { type JobRedrive, type RedriveResult, refusalError } from "../redrive-job.ts";
import { ErrorResponse } from "./error-response.ts";
import { EXAMPLE_JOB_ID, RETRIED_BATCH_EXAMPLE, RETRIED_JOB_EXAMPLE } from "./redrive-examples.ts";

/** Options for {@link redriveRoutes}. */
export interface RedriveRoutesOptions {
  /** Prefix of links in responses; empty for relative links. */
  publicUrl: string;
  redrive: JobRedrive;
}

/** The most failed items one `retry-failed` request redrives; the answer says how many remain. */
export const MAX_REDRIVE_PER_REQUEST = 1_000;

/** Refusals listed in a bulk answer (the counts cover them all). */
const LISTED_REFUSALS = 20;

const IdParams = z.object({ id: z.string().describe("The id") });

/** One job a bulk redrive did not redrive, and why. */
export const RedriveRefusalView = z
  .object({
    jobId: z.string(),
    code: z.enum(["not_found", "conflict", "quota_exceeded"]),
    message: z.string(),
  })
  .meta({ id: "RedriveRefusal" });

/** What a bulk redrive did. */
export const RedriveSummary = z
  .object({
    matched: z.number().int().describe("Failed jobs this request took (at most `limit`)"),
    redriven: z.number().int().describe("Jobs queued again"),
    refused: z
      .record(z.string(), z.number().int())
      .describe("Jobs not redriven, by refusal code (`quota_exceeded`, `conflict`, `not_found`)"),
    refusals: z.array(RedriveRefusalView).describe(`The first ${LISTED_REFUSALS} refusals`),
    redrivenJobIds: z.array(z.string()),
    remaining: z
      .number()
      .int()
      .describe("Failed jobs still matching after this request (a later request takes them)"),
  })
  .meta({ id: "RedriveSummary" });
export type RedriveSummary = z.infer<typeof RedriveSummary>;

const RetryFailedBody = z
  .object({
    limit: z
      .number()
      .int()
      .min(1)
      .max(MAX_REDRIVE_PER_REQUEST)
      .default(MAX_REDRIVE_PER_REQUEST)
      .describe("The most failed items this request redrives"),
  })
  .strict()
  .default({ limit: MAX_REDRIVE_PER_REQUEST })
  .meta({ examples: [{ limit: 100 }] });

const RetriedJobView = JobView.meta({ id: "RetriedJob", examples: [RETRIED_JOB_EXAMPLE] });

const BatchRetryView = RedriveSummary.extend({ batch: BatchView }).meta({
  id: "BatchRetry",
  examples: [
    {
      matched: 2,
      redriven: 2,
      refused: {},
      refusals: [],
      redrivenJobIds: [EXAMPLE_JOB_ID],
      remaining: 0,
      batch: RETRIED_BATCH_EXAMPLE,
    },
  ],
});

/**
 * Runs redrives one by one and sums them up (each is its own statement: a refusal of
 * one job, e.g. over quota, leaves the others redriven).
 */
export async function redriveMany(
  redrive: JobRedrive,
  jobIds: readonly string[],
  userId?: string,
): Promise<Omit<RedriveSummary, "remaining">> {
  const summary: Omit<RedriveSummary, "remaining"> = {
    matched: jobIds.length,
    redriven: 0,
    refused: {},
    refusals: [],
    redrivenJobIds: [],
  };
  for (const jobId of jobIds) {
    const result: RedriveResult = await redrive.redrive(jobId, userId);
    if (result.redriven) {
      summary.redriven += 1;
      summary.redrivenJobIds.push(jobId);
      continue;
    }
    const { code, message } = result.refusal;
    summary.refused[code] = (summary.refused[code] ?? 0) + 1;
    if (summary.refusals.length < LISTED_REFUSALS) summary.refusals.push({ jobId, code, message });
  }
  return summary;
}

/** `POST /v1/jobs/:id/retry` and `POST /v1/batches/:id/retry-failed`: a user runs failed jobs again. */
export async function redriveRoutes(app: FastifyInstance, options: RedriveRoutesOptions): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const batches = new BatchRepository({ db: app.genq.db });
  const search = new JobSearch({ db: app.genq.db });

  routes.post(
    "/jobs/:id/retry",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        operationId: "retryJob",
        summary: "Retry a failed job",
        description:
          "Runs a failed job again: it goes back to `queued` with a fresh attempt budget and a quota hold " +
          "taken as for a new submission (429 `quota_exceeded` when it does not fit). Its history is kept: " +
          "attempt numbers continue and the provider calls of earlier attempts stay in `GET /v1/jobs/{id}`. " +
          "Webhooks and live events follow as for a new run. Only failed jobs can be retried (409 otherwise); " +
          "a canceled job is resubmitted instead.",
        tags: ["jobs"],
        params: IdParams,
        response: {
          202: RetriedJobView,
          401: ErrorResponse,
          404: ErrorResponse,
          409: ErrorResponse,
          429: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      if (!isId(id)) throw new NotFoundError("job", id);
      const job = await options.redrive.redriveOrThrow(id, request.principal.userId);
      request.log.info({ jobId: id }, "job retried by its owner");
      return reply.status(202).send(toJobView(job, options.publicUrl));
    },
  );

  routes.post(
    "/batches/:id/retry-failed",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        operationId: "retryFailedBatchItems",
        summary: "Retry a batch's failed items",
        description:
          "Runs the batch's failed items again (at most `limit` per request; `remaining` says how many are left), " +
          "each as `POST /v1/jobs/{id}/retry` does: a fresh attempt budget and a quota hold per item (an item " +
          "that does not fit is refused alone, counted in `refused`). The batch counts them as pending again: a " +
          "completed batch goes back to `running` and completes again, with a new `batch.completed` event " +
          "(webhook and live) carrying the new counts. Items of a canceled batch are not run again (409).",
        tags: ["batches"],
        params: IdParams,
        body: RetryFailedBody,
        response: {
          200: BatchRetryView,
          400: ErrorResponse,
          401: ErrorResponse,
          404: ErrorResponse,
          409: ErrorResponse,
        },
      },
    },
    async (request) => {
      const id = request.params.id;
      if (!isId(id)) throw new NotFoundError("batch", id);
      const userId = request.principal.userId;
      const batch = await batches.findForUser(userId, id);
      if (batch.cancelRequested) {
        throw refusalError(id, {
          code: "conflict",
          message: `batch ${id} was canceled; its items are not run again`,
        });
      }
      const filter = { userId, batchId: id, status: "failed" as const };
      const jobIds = await search.ids(filter, request.body.limit);
      const summary = await redriveMany(options.redrive, jobIds, userId);
      const remaining = await search.count(filter, 1_000_000);
      request.log.info({ batchId: id, redriven: summary.redriven }, "batch items retried by their owner");
      const now = await batches.findForUser(userId, id);
      const active = now.status === "running" ? await batches.countActive(id) : 0;
      return { ...summary, remaining, batch: toBatchView(now, active, options.publicUrl) };
    },
  );
}
