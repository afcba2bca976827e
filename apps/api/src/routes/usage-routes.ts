import { GenqError } from "@genq/core";
import { type QuotaKindStatus, USAGE_GROUP_BY } from "@genq/quota";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ErrorResponse } from "./error-response.ts";

const UsageQuery = z.object({
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("Start (inclusive); default: the start of this month (UTC)"),
  to: z.iso.datetime({ offset: true }).optional().describe("End (exclusive); default: now"),
  groupBy: z.enum(USAGE_GROUP_BY as ["day", "provider", "model", "type"]).default("day"),
});

const Totals = z.object({
  jobs: z.number().int(),
  inputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  outputTokens: z.number().int(),
  reasoningTokens: z.number().int(),
  images: z.number().int(),
  costMicroUsd: z.number().int(),
  onlineCostMicroUsd: z
    .number()
    .int()
    .describe("What the same tokens would have cost online (economy items at online prices)"),
  savingsMicroUsd: z
    .number()
    .int()
    .describe("`onlineCostMicroUsd − costMicroUsd`: saved by the economy tier"),
});

const Kind = z.object({
  used: z.number().int(),
  reserved: z.number().int(),
  limit: z.number().int().nullable(),
});

const UsageResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    groupBy: z.string(),
    totals: Totals,
    groups: z.array(Totals.extend({ key: z.string() })),
    quota: z.object({
      plan: z.string(),
      periodStart: z.string(),
      resetsAt: z.string().describe("When this month's quota resets (UTC)"),
      textTokens: Kind,
      images: Kind,
      costMicroUsd: Kind.describe("limit null: no monthly budget"),
    }),
    projection: z.object({
      costSoFarMicroUsd: z.number().int(),
      daysElapsed: z.number().int(),
      daysInMonth: z.number().int(),
      projectedMonthEndCostMicroUsd: z.number().int(),
    }),
  })
  .meta({ id: "Usage" });

const kind = (status: QuotaKindStatus) => ({
  used: status.used,
  reserved: status.reserved,
  limit: status.limit,
});

/** `GET /v1/usage`: the caller's usage and cost, quota this month and a month-end projection. */
export async function usageRoutes(app: FastifyInstance): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get(
    "/usage",
    {
      schema: {
        operationId: "getUsage",
        summary: "Your usage, cost and quota",
        description:
          "Totals over [from, to) grouped by day, provider, model or job type (from the usage record of every " +
          "completed job), this month's quota per kind (used, reserved by running jobs, limit, reset time), and a " +
          "month-end cost projection from the daily average so far.",
        tags: ["usage"],
        querystring: UsageQuery,
        response: { 200: UsageResponse, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const { quota } = app.genq;
      if (quota === undefined)
        throw new GenqError("service_unavailable", "quotas are not configured on this API");
      const userId = request.principal.userId;
      const status = await quota.status(userId);
      const from = request.query.from === undefined ? status.periodStart : new Date(request.query.from);
      const to = request.query.to === undefined ? new Date() : new Date(request.query.to);
      const report = await quota.usageReport({ userId, from, to, groupBy: request.query.groupBy });
      const { projection } = report;
      return {
        from: report.from.toISOString(),
        to: report.to.toISOString(),
        groupBy: report.groupBy,
        totals: report.totals,
        groups: report.groups,
        quota: {
          plan: status.plan,
          periodStart: status.periodStart.toISOString(),
          resetsAt: status.resetsAt.toISOString(),
          textTokens: kind(status.kinds.textTokens),
          images: kind(status.kinds.images),
          costMicroUsd: kind(status.kinds.costMicroUsd),
        },
        projection: {
          costSoFarMicroUsd: projection.costSoFarMicroUsd,
          daysElapsed: projection.daysElapsed,
          daysInMonth: projection.daysInMonth,
          projectedMonthEndCostMicroUsd: projection.projectedMicroUsd,
        },
      };
    },
  );
}
