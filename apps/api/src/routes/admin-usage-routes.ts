import { Prisma } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import { ErrorResponse } from "./error-response.ts";

const GROUP_COLUMNS = {
  user: Prisma.sql`u.user_id::text`,
  provider: Prisma.sql`u.provider`,
  model: Prisma.sql`u.provider || '/' || u.model`,
  day: Prisma.sql`to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  type: Prisma.sql`u.job_type::text`,
} as const;

const Query = z
  .object({
    from: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Start (inclusive); default: the start of this month (UTC)"),
    to: z.iso.datetime({ offset: true }).optional().describe("End (exclusive); default: now"),
    groupBy: z.enum(["user", "provider", "model", "day", "type"]).default("user"),
  })
  .refine(
    (query) =>
      query.from === undefined || query.to === undefined || new Date(query.from) < new Date(query.to),
    {
      message: "`from` must be before `to`",
      path: ["from"],
    },
  );

const Totals = z.object({
  jobs: z.number().int(),
  inputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  outputTokens: z.number().int(),
  images: z.number().int(),
  costMicroUsd: z.number().int(),
});

const Report = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.string(),
  totals: Totals,
  groups: z.array(Totals.extend({ key: z.string(), email: z.string().optional() })),
});

interface Row {
  key: string;
  email: string | null;
  jobs: number;
  input_tokens: bigint;
  cached_input_tokens: bigint;
  output_tokens: bigint;
  images: bigint;
  cost_micro_usd: bigint;
}

/** `GET /v1/admin/usage`: usage and cost across all users, by user, provider, model, day or job type. */
export async function adminUsageRoutes(app: FastifyInstance, options: OperatorCredentials): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  app.withTypeProvider<ZodTypeProvider>().get(
    "/usage",
    {
      schema: {
        operationId: "getAdminUsage",
        tags: ["admin"],
        summary: "Usage and cost across users",
        security: [{ operator: [] }],
        querystring: Query,
        response: { 200: Report, 400: ErrorResponse, 401: ErrorResponse },
      },
    },
    async (request) => {
      const now = new Date();
      const from =
        request.query.from === undefined
          ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
          : new Date(request.query.from);
      const to = request.query.to === undefined ? now : new Date(request.query.to);
      const key = GROUP_COLUMNS[request.query.groupBy];
      const email = request.query.groupBy === "user" ? Prisma.sql`min(us.email)` : Prisma.sql`NULL`;
      const rows = await app.genq.db.$queryRaw<Row[]>`
        SELECT ${key} AS key, ${email} AS email, count(*)::int AS jobs,
               coalesce(sum(u.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(u.cached_input_tokens), 0)::bigint AS cached_input_tokens,
               coalesce(sum(u.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(u.images), 0)::bigint AS images,
               coalesce(sum(u.cost_micro_usd), 0)::bigint AS cost_micro_usd
          FROM usage_records u
          JOIN users us ON us.id = u.user_id
         WHERE u.created_at >= ${from} AND u.created_at < ${to}
         GROUP BY 1
         ORDER BY 1`;
      const groups = rows.map((row) => ({
        key: row.key,
        ...(row.email === null ? {} : { email: row.email }),
        jobs: row.jobs,
        inputTokens: Number(row.input_tokens),
        cachedInputTokens: Number(row.cached_input_tokens),
        outputTokens: Number(row.output_tokens),
        images: Number(row.images),
        costMicroUsd: Number(row.cost_micro_usd),
      }));
      const totals = {
        jobs: 0,
        inputTokens: 0,
        cachedInputTokens: 0,
        outputTokens: 0,
        images: 0,
        costMicroUsd: 0,
      };
      for (const group of groups) {
        for (const field of Object.keys(totals) as Array<keyof typeof totals>) totals[field] += group[field];
      }
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        groupBy: request.query.groupBy,
        totals,
        groups,
      };
    },
  );
}
