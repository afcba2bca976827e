import type { Database } from "./client.ts";
import { Prisma } from "./generated/prisma/client.ts";

/** Filters of the provider call log. */
export interface CallLogQuery {
  provider?: string | undefined;
  model?: string | undefined;
  keyId?: string | undefined;
  outcome?: "ok" | "error" | "skipped" | undefined;
  errorCode?: string | undefined;
  /** Started at or after. */
  from?: Date | undefined;
  /** Started before. */
  to?: Date | undefined;
  /** The last row of the previous page: its start time and id. */
  cursor?: { startedAt: Date; id: string } | undefined;
  limit: number;
}

/** One provider call, across jobs and users. */
export interface CallLogEntry {
  id: string;
  jobId: string;
  userId: string;
  attempt: number;
  seq: number;
  provider: string;
  model: string;
  keyId: string | null;
  startedAt: Date;
  latencyMs: number;
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

/** A page of the call log, newest first. */
export interface CallLogPage {
  calls: CallLogEntry[];
  nextCursor: { startedAt: Date; id: string } | null;
}

/** Filters of the usage trends. */
export interface UsageTrendQuery {
  from: Date;
  to: Date;
  provider?: string | undefined;
  model?: string | undefined;
  /** The last row of the previous page: (day, provider, model). */
  cursor?: { day: string; provider: string; model: string } | undefined;
  limit: number;
}

/** One day's usage and cost of one provider model. */
export interface UsageTrendPoint {
  day: string;
  provider: string;
  model: string;
  jobs: number;
  inputTokens: number;
  outputTokens: number;
  images: number;
  costMicroUsd: number;
}

/**
 * Operators' views across users: the provider call log (`provider_calls`, served by
 * its `started_at` and `(key_id, started_at)` indexes) and daily usage trends per
 * provider and model (`usage_records`, by its `created_at` index). Keyset pagination
 * on both, so a page costs the same deep in the log as at its head.
 */
export class OperatorViews {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Provider calls, newest first. */
  async calls(query: CallLogQuery): Promise<CallLogPage> {
    const conditions: Prisma.Sql[] = [];
    if (query.provider !== undefined) conditions.push(Prisma.sql`c.provider = ${query.provider}`);
    if (query.model !== undefined) conditions.push(Prisma.sql`c.model = ${query.model}`);
    if (query.keyId !== undefined) conditions.push(Prisma.sql`c.key_id = ${query.keyId}`);
    if (query.outcome !== undefined) conditions.push(Prisma.sql`c.outcome = ${query.outcome}`);
    if (query.errorCode !== undefined) conditions.push(Prisma.sql`c.error_code = ${query.errorCode}`);
    if (query.from !== undefined) conditions.push(Prisma.sql`c.started_at >= ${query.from}::timestamptz`);
    if (query.to !== undefined) conditions.push(Prisma.sql`c.started_at < ${query.to}::timestamptz`);
    if (query.cursor !== undefined) {
      conditions.push(
        Prisma.sql`(c.started_at, c.id) < (${query.cursor.startedAt}::timestamptz, ${query.cursor.id}::uuid)`,
      );
    }
    const where = conditions.length === 0 ? Prisma.sql`TRUE` : Prisma.join(conditions, " AND ");
    const rows = await this.#db.$queryRaw<CallRow[]>`
      SELECT c.id, c.job_id, j.user_id, c.job_attempt, c.seq, c.provider, c.model, c.key_id, c.started_at,
             c.latency_ms, c.outcome, c.error_code, c.error_message, c.input_tokens, c.output_tokens
        FROM provider_calls c JOIN jobs j ON j.id = c.job_id
       WHERE ${where}
       ORDER BY c.started_at DESC, c.id DESC
       LIMIT ${query.limit + 1}`;
    const hasMore = rows.length > query.limit;
    const page = (hasMore ? rows.slice(0, query.limit) : rows).map(toCallLogEntry);
    const last = page.at(-1);
    return {
      calls: page,
      nextCursor: hasMore && last !== undefined ? { startedAt: last.startedAt, id: last.id } : null,
    };
  }

  /** Daily usage and cost per provider and model (UTC days), oldest day first. */
  async usageTrends(query: UsageTrendQuery): Promise<{ points: UsageTrendPoint[]; hasMore: boolean }> {
    const conditions: Prisma.Sql[] = [
      Prisma.sql`u.created_at >= ${query.from}::timestamptz`,
      Prisma.sql`u.created_at < ${query.to}::timestamptz`,
    ];
    if (query.provider !== undefined) conditions.push(Prisma.sql`u.provider = ${query.provider}`);
    if (query.model !== undefined) conditions.push(Prisma.sql`u.model = ${query.model}`);
    const after =
      query.cursor === undefined
        ? Prisma.sql`TRUE`
        : Prisma.sql`(t.day, t.provider, t.model) > (${query.cursor.day}, ${query.cursor.provider}, ${query.cursor.model})`;
    const rows = await this.#db.$queryRaw<TrendRow[]>`
      SELECT * FROM (
        SELECT to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, u.provider, u.model,
               count(*)::int AS jobs,
               coalesce(sum(u.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(u.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(u.images), 0)::bigint AS images,
               coalesce(sum(u.cost_micro_usd), 0)::bigint AS cost_micro_usd
          FROM usage_records u
         WHERE ${Prisma.join(conditions, " AND ")}
         GROUP BY 1, 2, 3) t
       WHERE ${after}
       ORDER BY t.day, t.provider, t.model
       LIMIT ${query.limit + 1}`;
    const hasMore = rows.length > query.limit;
    return {
      hasMore,
      points: (hasMore ? rows.slice(0, query.limit) : rows).map((row) => ({
        day: row.day,
        provider: row.provider,
        model: row.model,
        jobs: row.jobs,
        inputTokens: Number(row.input_tokens),
        outputTokens: Number(row.output_tokens),
        images: Number(row.images),
        costMicroUsd: Number(row.cost_micro_usd),
      })),
    };
  }
}

interface CallRow {
  id: string;
  job_id: string;
  user_id: string;
  job_attempt: number;
  seq: number;
  provider: string;
  model: string;
  key_id: string | null;
  started_at: Date;
  latency_ms: number;
  outcome: string;
  error_code: string | null;
  error_message: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
}

interface TrendRow {
  day: string;
  provider: string;
  model: string;
  jobs: number;
  input_tokens: bigint;
  output_tokens: bigint;
  images: bigint;
  cost_micro_usd: bigint;
}

function toCallLogEntry(row: CallRow): CallLogEntry {
  return {
    id: row.id,
    jobId: row.job_id,
    userId: row.user_id,
    attempt: row.job_attempt,
    seq: row.seq,
    provider: row.provider,
    model: row.model,
    keyId: row.key_id,
    startedAt: row.started_at,
    latencyMs: row.latency_ms,
    outcome: row.outcome,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
  };
}
