import { GenqError, isId } from "@genq/core";
import { JobSearch, OperatorViews } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { JobSearchParams, searchCursor, toJobSearchFilter } from "../job-search-query.ts";
import { JobView, toJobView } from "../job-view.ts";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import type { JobRedrive } from "../redrive-job.ts";
import { ErrorResponse } from "./error-response.ts";
import { encodeCursor, listPage } from "./page-cursor.ts";
import { EXAMPLE_JOB_ID, RETRIED_JOB_EXAMPLE } from "./redrive-examples.ts";
import { MAX_REDRIVE_PER_REQUEST, RedriveSummary, redriveMany } from "./redrive-routes.ts";

/** Options for {@link adminJobRoutes}. */
export interface AdminJobRoutesOptions extends OperatorCredentials {
  publicUrl: string;
  redrive: JobRedrive;
}

/** The last provider call of a job, with the provider's own error text (operators only). */
const LastCallView = z
  .object({
    attempt: z.number().int(),
    seq: z.number().int(),
    provider: z.string(),
    model: z.string(),
    keyId: z.string().nullable(),
    startedAt: z.string(),
    latencyMs: z.number().int(),
    outcome: z.string(),
    errorCode: z.string().nullable(),
    errorMessage: z.string().nullable(),
  })
  .meta({ id: "AdminLastCall" });

const AdminJobView = JobView.extend({
  userId: z.string(),
  lastCall: LastCallView.nullable().describe("The job's last provider call (null: none was made)"),
}).meta({ id: "AdminJob" });

const AdminJobPage = listPage(AdminJobView).meta({
  examples: [
    {
      object: "list",
      data: [
        {
          ...RETRIED_JOB_EXAMPLE,
          status: "failed",
          userId: "0193a5a0-0000-7000-8000-000000000001",
          finishedAt: "2026-12-03T15:00:09.000Z",
          lastCall: {
            attempt: 3,
            seq: 1,
            provider: "openai",
            model: "gpt-4o-mini",
            keyId: "primary",
            startedAt: "2026-12-03T15:00:08.000Z",
            latencyMs: 812,
            outcome: "error",
            errorCode: "provider_unavailable",
            errorMessage: "503 Service Unavailable",
          },
        },
      ],
      nextCursor: null,
    },
  ],
});

const AdminListQuery = JobSearchParams.extend({
  userId: z.string().max(64).optional().describe("Only this user's jobs"),
}).strict();

const RedriveBody = z
  .object({
    errorCode: z.string().min(1).max(100).optional(),
    provider: z.string().min(1).max(200).optional(),
    model: z.string().min(1).max(200).optional(),
    userId: z.string().max(64).optional(),
    batchId: z.string().max(64).optional(),
    type: z.enum(["text", "image"]).optional(),
    from: z.iso.datetime({ offset: true }).optional().describe("Created at or after"),
    to: z.iso.datetime({ offset: true }).optional().describe("Created before"),
    limit: z
      .number()
      .int()
      .min(1)
      .max(MAX_REDRIVE_PER_REQUEST)
      .default(100)
      .describe("The most jobs this request redrives, oldest first; `remaining` says how many are left"),
  })
  .strict()
  .meta({ examples: [{ errorCode: "provider_unavailable", provider: "openai", limit: 500 }] });

const RedriveAnswer = RedriveSummary.meta({
  id: "AdminRedriveSummary",
  examples: [
    {
      matched: 2,
      redriven: 1,
      refused: { quota_exceeded: 1 },
      refusals: [
        {
          jobId: "0193a5b0-7c1e-7d2a-9b3c-4d5e6f708193",
          code: "quota_exceeded",
          message: "text token quota exceeded",
        },
      ],
      redrivenJobIds: [EXAMPLE_JOB_ID],
      remaining: 1,
    },
  ],
});

const CallsQuery = z
  .object({
    provider: z.string().min(1).max(200).optional(),
    model: z.string().min(1).max(200).optional(),
    keyId: z.string().min(1).max(200).optional().describe("The configured id of the provider key"),
    outcome: z.enum(["ok", "error", "skipped"]).optional(),
    errorCode: z.string().min(1).max(100).optional(),
    from: z.iso.datetime({ offset: true }).optional().describe("Started at or after"),
    to: z.iso.datetime({ offset: true }).optional().describe("Started before"),
    cursor: z.string().max(200).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

const CallLogEntryView = LastCallView.extend({
  id: z.string(),
  jobId: z.string(),
  userId: z.string(),
  inputTokens: z.number().int().nullable(),
  outputTokens: z.number().int().nullable(),
}).meta({ id: "AdminProviderCall" });

const CallLogPageView = listPage(CallLogEntryView).meta({
  examples: [
    {
      object: "list",
      data: [
        {
          id: "0193a5b0-0000-7000-8000-0000000000aa",
          jobId: EXAMPLE_JOB_ID,
          userId: "0193a5a0-0000-7000-8000-000000000001",
          attempt: 1,
          seq: 1,
          provider: "openai",
          model: "gpt-4o-mini",
          keyId: "primary",
          startedAt: "2026-12-03T15:00:08.000Z",
          latencyMs: 640,
          outcome: "ok",
          errorCode: null,
          errorMessage: null,
          inputTokens: 120,
          outputTokens: 48,
        },
      ],
      nextCursor: null,
    },
  ],
});

const TrendsQuery = z
  .object({
    from: z.iso.datetime({ offset: true }).optional().describe("Start (inclusive); default: 30 days ago"),
    to: z.iso.datetime({ offset: true }).optional().describe("End (exclusive); default: now"),
    provider: z.string().min(1).max(200).optional(),
    model: z.string().min(1).max(200).optional(),
    cursor: z.string().max(500).optional().describe("`nextCursor` of the previous page"),
    limit: z.coerce.number().int().min(1).max(1_000).default(500),
  })
  .strict();

const TrendPointView = z
  .object({
    day: z.string().describe("The UTC day, YYYY-MM-DD"),
    provider: z.string(),
    model: z.string(),
    jobs: z.number().int(),
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    images: z.number().int(),
    costMicroUsd: z.number().int(),
  })
  .meta({ id: "UsageTrendPoint" });

const TrendsPage = listPage(TrendPointView).meta({
  examples: [
    {
      object: "list",
      data: [
        {
          day: "2026-12-02",
          provider: "openai",
          model: "gpt-4o-mini",
          jobs: 1520,
          inputTokens: 812_000,
          outputTokens: 301_000,
          images: 0,
          costMicroUsd: 302_400,
        },
      ],
      nextCursor: null,
    },
  ],
});

function badQuery(field: string, message: string): GenqError {
  return new GenqError("invalid_request", `querystring.${field}: ${message}`, {
    details: { location: "querystring", field },
  });
}

/** Cursors of keyset pages over composite keys: base64url JSON. */
function encodeKey(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function decodeKey<T>(cursor: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
  } catch {
    throw badQuery("cursor", "not a cursor returned by this API");
  }
}

const CallCursor = z.object({ s: z.iso.datetime(), i: z.string().refine(isId) });
const TrendCursor = z.object({ d: z.string().max(10), p: z.string().max(200), m: z.string().max(200) });

/**
 * Operators' job views (HTTP Basic, like Bull Board): the job search across users
 * (`status=failed` is the dead-letter view, with each job's last call), the redrive by
 * filter, the provider call log across jobs and daily usage trends per provider and model.
 */
export async function adminJobRoutes(app: FastifyInstance, options: AdminJobRoutesOptions): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const search = new JobSearch({ db: app.genq.db });
  const views = new OperatorViews({ db: app.genq.db });

  routes.get(
    "/jobs",
    {
      schema: {
        operationId: "listAdminJobs",
        tags: ["admin"],
        summary: "Search jobs across users (the dead-letter view with status=failed)",
        description:
          "The filters of `GET /v1/jobs`, plus `userId`. Each job carries its owner and its last provider " +
          "call with the provider's own error text. `status=failed&errorCode=…` lists dead letters to redrive.",
        security: [{ operator: [] }],
        querystring: AdminListQuery,
        response: { 200: AdminJobPage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { cursor: _, limit, userId, ...filter } = request.query;
      if (userId !== undefined && !isId(userId)) throw badQuery("userId", "not a user id");
      const page = await search.page({
        ...toJobSearchFilter(filter),
        userId,
        cursor: searchCursor(request.query),
        limit,
      });
      const lastCalls = await search.lastCalls(page.jobs.map((job) => job.id));
      return {
        object: "list" as const,
        data: page.jobs.map((job) => {
          const call = lastCalls.get(job.id);
          return {
            ...toJobView(job, options.publicUrl),
            userId: job.userId,
            lastCall: call === undefined ? null : { ...call, startedAt: call.startedAt.toISOString() },
          };
        }),
        nextCursor: encodeCursor(page.nextCursor),
      };
    },
  );

  routes.post(
    "/jobs/redrive",
    {
      schema: {
        operationId: "redriveJobs",
        tags: ["admin"],
        summary: "Redrive failed jobs by filter",
        description:
          "Runs failed jobs matching every given filter again, oldest first, at most `limit` per request: " +
          "each goes back to `queued` with a fresh attempt budget and a quota hold taken as for a new " +
          "submission; one that does not fit its owner's quota is refused alone (`refused.quota_exceeded`). " +
          "The answer counts what happened and how many matching failed jobs remain.",
        security: [{ operator: [] }],
        body: RedriveBody,
        response: { 200: RedriveAnswer, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { limit, from, to, ...rest } = request.body;
      for (const field of ["userId", "batchId"] as const) {
        const value = rest[field];
        if (value !== undefined && !isId(value)) {
          throw new GenqError("invalid_request", `body.${field}: not an id`, {
            details: { location: "body", field },
          });
        }
      }
      const filter = {
        ...rest,
        status: "failed" as const,
        createdFrom: from === undefined ? undefined : new Date(from),
        createdTo: to === undefined ? undefined : new Date(to),
      };
      const jobIds = await search.ids(filter, limit);
      const summary = await redriveMany(options.redrive, jobIds);
      const remaining = await search.count(filter, 1_000_000);
      request.log.info(
        { filter: request.body, redriven: summary.redriven },
        "failed jobs redriven by an operator",
      );
      return { ...summary, remaining };
    },
  );

  routes.get(
    "/calls",
    {
      schema: {
        operationId: "listProviderCalls",
        tags: ["admin"],
        summary: "The provider call log across jobs, newest first",
        security: [{ operator: [] }],
        querystring: CallsQuery,
        response: { 200: CallLogPageView, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { cursor, from, to, ...filter } = request.query;
      const key = cursor === undefined ? undefined : decodeKey(cursor, CallCursor);
      const page = await views.calls({
        ...filter,
        from: from === undefined ? undefined : new Date(from),
        to: to === undefined ? undefined : new Date(to),
        cursor: key === undefined ? undefined : { startedAt: new Date(key.s), id: key.i },
      });
      return {
        object: "list" as const,
        data: page.calls.map((call) => ({ ...call, startedAt: call.startedAt.toISOString() })),
        nextCursor:
          page.nextCursor === null
            ? null
            : encodeKey({ s: page.nextCursor.startedAt.toISOString(), i: page.nextCursor.id }),
      };
    },
  );

  routes.get(
    "/usage/trends",
    {
      schema: {
        operationId: "getUsageTrends",
        tags: ["admin"],
        summary: "Daily usage and cost per provider and model",
        description: "One point per UTC day, provider and model with usage, oldest day first.",
        security: [{ operator: [] }],
        querystring: TrendsQuery,
        response: { 200: TrendsPage, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const now = new Date();
      const from =
        request.query.from === undefined
          ? new Date(now.getTime() - 30 * 86_400_000)
          : new Date(request.query.from);
      const to = request.query.to === undefined ? now : new Date(request.query.to);
      if (from >= to) throw badQuery("from", "must be before `to`");
      const key =
        request.query.cursor === undefined ? undefined : decodeKey(request.query.cursor, TrendCursor);
      const { points, hasMore } = await views.usageTrends({
        from,
        to,
        provider: request.query.provider,
        model: request.query.model,
        cursor: key === undefined ? undefined : { day: key.d, provider: key.p, model: key.m },
        limit: request.query.limit,
      });
      const last = points.at(-1);
      return {
        object: "list" as const,
        data: points,
        nextCursor:
          hasMore && last !== undefined ? encodeKey({ d: last.day, p: last.provider, m: last.model }) : null,
      };
    },
  );
}
