import { CreateJobRequest, GenqError, isId, type JobType, NotFoundError } from "@genq/core";
import { type JobRecord, JobSearch, requestFingerprint, UploadRepository } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import { checkPlanPriority } from "@genq/quota";
import { injectTraceContext, inSpan, SpanKind } from "@genq/telemetry";
import { checkWebhookUrl } from "@genq/webhooks";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { withImageLinks } from "../image-links.ts";
import { checkImageRequest } from "../image-request-check.ts";
import { checkImageUploads } from "../image-upload-check.ts";
import { toJobQueueView } from "../job-queue-view.ts";
import { toResultView } from "../job-result-view.ts";
import { JobSearchParams, searchCursor, toJobSearchFilter } from "../job-search-query.ts";
import { JobDetailView, JobView, toJobDetailView, toJobView } from "../job-view.ts";
import {
  JobWaits,
  type JobWaitsOptions,
  PreferWaitHeader,
  preferredWaitSeconds,
  waitForRequest,
} from "../job-wait.ts";
import { SUBMISSION_ROUTE } from "../plugins/submission-rate-limit.ts";
import { checkProviderOptions } from "../provider-options-check.ts";
import { RouterCatalogCache } from "../router-catalog-cache.ts";
import { admitJob } from "../submit-job.ts";
import { ErrorResponse } from "./error-response.ts";
import { encodeCursor, listPage } from "./page-cursor.ts";

/** Options for {@link jobRoutes}. */
export interface JobRoutesOptions {
  /** Prefix of links in responses; empty for relative links. */
  publicUrl: string;
  metrics?: GenqMetrics | undefined;
  /** Limits of `Prefer: wait` (waits per process, per user; docs/api.md). */
  waits?: Pick<JobWaitsOptions, "maxWaits" | "maxWaitsPerUser" | "checkIntervalMs"> | undefined;
}

const JobIdParams = z.object({ id: z.string().describe("The job id") });

const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255, "Idempotency-Key must be at most 255 characters")
    .optional()
    .describe("Repeat a request safely: the same key and body return the same job"),
});

const SubmitHeaders = IdempotencyHeaders.extend({ prefer: PreferWaitHeader });

const ListQuery = JobSearchParams.strict();

const JobPage = listPage(JobView).meta({ id: "JobPage" });

function requireJobId(id: string): string {
  // A malformed id cannot name a job; answering 404 keeps it out of Postgres.
  if (!isId(id)) throw new NotFoundError("job", id);
  return id;
}

/** `/v1/jobs`: submit, read, list and cancel jobs. */
/** Sent when the server honoured `Prefer: wait=N` (RFC 7240). */
const PREFERENCE_APPLIED = {
  "preference-applied": {
    description:
      "`wait=N` when the answer waited (up to N s) for the job to finish, as `Prefer: wait=N` asked",
    type: "string",
    pattern: "^wait=\\d+$",
    example: "wait=30",
  },
};

export async function jobRoutes(app: FastifyInstance, options: JobRoutesOptions): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { jobs, queues, redis } = app.genq;
  const uploads = new UploadRepository({ db: app.genq.db });
  const catalogs = new RouterCatalogCache({ redis, prefix: queues.prefix });
  const waits = new JobWaits({
    ...options.waits,
    db: app.genq.db,
    redis,
    prefix: queues.prefix,
    log: app.genq.events.log,
    watches: app.genq.events.watches,
  });
  app.addHook("preClose", async () => waits.abortAll());
  const search = new JobSearch({ db: app.genq.db });

  routes.post(
    "/jobs",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        operationId: "createJob",
        summary: "Submit a job",
        description:
          "Stores the job with a quota hold covering its worst case, then queues it by priority. 202 means " +
          "the job is committed, fits the caller's quota and will run; a job that does not fit answers 429 " +
          "`quota_exceeded` at once. Repeating an Idempotency-Key with the same body answers 200 with the same job. " +
          "With `Prefer: wait=N` the answer waits up to N s for the job to finish: 200 with the finished job " +
          "(result or error) when it does, else 202 (200 for a replay) with the job as it is then; " +
          "`Preference-Applied: wait=N` says the wait was honoured.",
        tags: ["jobs"],
        headers: SubmitHeaders,
        responseHeaders: { 200: PREFERENCE_APPLIED, 202: PREFERENCE_APPLIED },
        body: CreateJobRequest,
        response: {
          200: JobView,
          202: JobView,
          400: ErrorResponse,
          401: ErrorResponse,
          403: ErrorResponse,
          409: ErrorResponse,
          429: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      // Refuse before writing anything if the queue is unreachable: no promise we cannot keep soon.
      if (redis.status !== "ready") {
        throw new GenqError("service_unavailable", "the job queue (Redis) is unavailable; retry shortly", {
          retryable: true,
        });
      }
      const body = request.body;
      const idempotencyKey = request.headers["idempotency-key"];
      const requestHash = idempotencyKey === undefined ? undefined : requestFingerprint(body);
      // `urgent` and `high` jump ahead of every other tenant's jobs: only plans that include them.
      checkPlanPriority(request.principal.plan, body.priority);
      // Obvious SSRF targets (http://127.0.0.1, http://[::1]) are refused now; delivery checks every address.
      if (body.webhook !== undefined) checkWebhookUrl(body.webhook.url, app.genq.webhookAllowlist);
      const catalog = await catalogs.get();
      // Options that could multiply or reprice the call on the operator's key are refused now.
      checkProviderOptions(catalog?.catalog, body);
      if (body.type === "image") {
        checkImageRequest(catalog?.catalog, body);
        await checkImageUploads(uploads, request.principal.userId, body.input);
      }
      // One trace per job starts here (when tracing is on): the worker continues it from the queue payload.
      const { job, created } = await inSpan(
        "genq.job.submit",
        {
          kind: SpanKind.PRODUCER,
          attributes: { "genq.job.type": body.type, "genq.job.priority": body.priority },
        },
        async (span) => {
          // One round trip: a replay answers first (it spends nothing), then the hold and the row.
          const { job, created } = await admitJob(
            { admission: app.genq.admission, quota: app.genq.quota },
            { userId: request.principal.userId, body, idempotencyKey, requestHash, catalog },
          ).catch((error: unknown) => {
            if (GenqError.is(error) && error.code === "quota_exceeded")
              options.metrics?.quotaRejections.inc({ where: "submit" });
            throw error;
          });
          if (created) {
            try {
              await queues.enqueue({
                id: job.id,
                type: job.type,
                priority: job.priority,
                trace: injectTraceContext(),
              });
            } catch (error) {
              // The row is committed, so the reconciler will enqueue it: the 202 still holds.
              request.log.warn(
                { err: error, jobId: job.id },
                "enqueue failed; the reconciler will enqueue the job",
              );
            }
            request.log.info({ jobId: job.id, priority: body.priority }, "job accepted");
            options.metrics?.jobsAccepted.inc({ type: body.type, priority: body.priority });
          }
          span.setAttribute("genq.job.id", job.id);
          return { job, created };
        },
      );
      const seconds = preferredWaitSeconds(request.headers.prefer);
      if (seconds === undefined || !(await waitForRequest(waits, request, reply, job.id, seconds))) {
        return reply.status(created ? 202 : 200).send(toJobView(job, options.publicUrl));
      }
      reply.header("preference-applied", `wait=${seconds}`);
      const current = await jobs.findForUser(request.principal.userId, job.id);
      const finished = ["completed", "failed", "canceled"].includes(current.status);
      return reply.status(finished || !created ? 200 : 202).send(await withLinks(current));
    },
  );

  /** The job's view, with fresh links to a completed image job's images. */
  const withLinks = async (job: JobRecord): Promise<JobView> => {
    const view = toJobView(job, options.publicUrl);
    const { storage, assets, assetUrlTtlSeconds } = app.genq;
    if (job.type !== "image" || job.status !== "completed" || storage === undefined) return view;
    const result = await withImageLinks(
      job.result,
      await assets.listForJob(job.id),
      storage,
      assetUrlTtlSeconds,
    );
    return { ...view, result };
  };

  /** A queued job's place in its queue; null (and a warning) when Redis cannot say. */
  const queuePosition = (type: JobType, id: string) =>
    queues.position(type, id).then(toJobQueueView, (error: unknown) => {
      app.log.warn({ err: error, jobId: id }, "could not read the job's queue position");
      return null;
    });

  routes.get(
    "/jobs/:id",
    {
      schema: {
        operationId: "getJob",
        summary: "Get a job",
        description:
          "The job with every provider call of its attempts (`calls`), and while it is queued where it " +
          "stands in its queue (`queue`: position, jobs ahead, estimated seconds to start); the list leaves both out.",
        tags: ["jobs"],
        params: JobIdParams,
        response: { 200: JobDetailView, 401: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const id = requireJobId(request.params.id);
      const job = await jobs.findForUser(request.principal.userId, id);
      const queue = job.status === "queued" ? await queuePosition(job.type, id) : null;
      const view = toJobDetailView(job, await jobs.listCalls(id), options.publicUrl, queue);
      const { storage, assets, assetUrlTtlSeconds } = app.genq;
      if (job.type !== "image" || job.status !== "completed" || storage === undefined) return view;
      const result = await withImageLinks(
        job.result,
        await assets.listForJob(id),
        storage,
        assetUrlTtlSeconds,
      );
      return { ...view, result: toResultView("image", result) };
    },
  );

  routes.get(
    "/jobs",
    {
      schema: {
        operationId: "listJobs",
        summary: "List jobs, newest first",
        description:
          "Filters narrow the list (all must hold): status, type, provider, model, errorCode, batchId, priority, " +
          "a creation time range, and metadata pairs (`?metadata=customer:acme`, repeatable).",
        tags: ["jobs"],
        querystring: ListQuery,
        response: { 200: JobPage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { cursor: _, limit, ...filter } = request.query;
      const page = await search.page({
        ...toJobSearchFilter(filter),
        userId: request.principal.userId,
        cursor: searchCursor(request.query),
        limit,
      });
      return {
        object: "list" as const,
        data: page.jobs.map((job) => toJobView(job, options.publicUrl)),
        nextCursor: encodeCursor(page.nextCursor),
      };
    },
  );

  routes.post(
    "/jobs/:id/cancel",
    {
      config: SUBMISSION_ROUTE,
      schema: {
        operationId: "cancelJob",
        summary: "Cancel a job",
        description:
          "A queued job is canceled at once; an active one is canceled at its next safe point " +
          "(`cancelRequested` is true until then). A completed or failed job answers 409.",
        tags: ["jobs"],
        params: JobIdParams,
        response: { 200: JobView, 401: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const id = requireJobId(request.params.id);
      const { job, wasActive } = await app.genq.lifecycle.cancel(request.principal.userId, id);
      // A queued job can hold a reservation from an earlier attempt (a retry or a postponement)
      // that no worker will release now; an active one is released by its worker. The cancel is
      // committed already, so a failure here is left to the workers' quota reclaim.
      if (!wasActive) {
        await app.genq.quota?.release(id).catch((error: unknown) => {
          request.log.warn({ err: error, jobId: id }, "could not release the job's quota reservation");
        });
      }
      // Best effort: the flag in Postgres is what the worker honours; these only make it faster.
      try {
        if (wasActive) await queues.publishCancel(id);
        else await queues.removeWaiting(job.type, id);
      } catch (error) {
        request.log.warn({ err: error, jobId: id }, "could not signal the cancel through Redis");
      }
      return toJobView(job, options.publicUrl);
    },
  );
}
