import type { JobStatus, JobType } from "@genq/core";
import type { Database } from "./client.ts";
import { Prisma } from "./generated/prisma/client.ts";
import type { JobRecord } from "./lifecycle/types.ts";

/**
 * Filters of a job search (users' `GET /v1/jobs`, operators' `GET /v1/admin/jobs`,
 * the redrive by filter). Every field narrows; absent fields do not.
 */
export interface JobSearchFilter {
  /** Only this user's jobs (always set for a user's search). */
  userId?: string | undefined;
  status?: JobStatus | undefined;
  type?: JobType | undefined;
  /** The provider the job asked for or ran on, or one an attempt called. */
  provider?: string | undefined;
  model?: string | undefined;
  /** The job's (last) error code. */
  errorCode?: string | undefined;
  batchId?: string | undefined;
  /** The BullMQ priority number (see @genq/core PRIORITIES). */
  priority?: number | undefined;
  /** Created at or after. */
  createdFrom?: Date | undefined;
  /** Created before. */
  createdTo?: Date | undefined;
  /** Top-level metadata keys and the values they must hold (JSON containment, `@>`). */
  metadata?: Readonly<Record<string, string | number | boolean>> | undefined;
}

/** A search page: newest first, keyed by id (UUIDv7 ids are creation order). */
export interface JobSearchQuery extends JobSearchFilter {
  /** The id of the last job of the previous page. */
  cursor?: string | undefined;
  limit: number;
}

/** A page of a search; `nextCursor` is null on the last page. */
export interface JobSearchPage {
  jobs: JobRecord[];
  nextCursor: string | null;
}

/**
 * The WHERE clause of a search over `jobs j`, each filter a parameter. The indexes
 * of migration `20261203151000_job_search` serve them: `(user_id, created_at)` and
 * `(user_id, status, id)` for a user's lists, a GIN `jsonb_path_ops` index for the
 * metadata containment, `(error_code, id)`, `(status, finished_at)` and
 * `(provider, id)` for operators' dead-letter views.
 */
export function jobSearchWhere(filter: JobSearchFilter & { cursor?: string | undefined }): Prisma.Sql {
  const conditions: Prisma.Sql[] = [];
  if (filter.userId !== undefined) conditions.push(Prisma.sql`j.user_id = ${filter.userId}::uuid`);
  if (filter.status !== undefined) conditions.push(Prisma.sql`j.status = ${filter.status}::"JobStatus"`);
  if (filter.type !== undefined) conditions.push(Prisma.sql`j.type = ${filter.type}::"JobType"`);
  if (filter.provider !== undefined) {
    conditions.push(Prisma.sql`(j.provider = ${filter.provider} OR EXISTS (
      SELECT 1 FROM provider_calls c WHERE c.job_id = j.id AND c.provider = ${filter.provider}))`);
  }
  if (filter.model !== undefined) conditions.push(Prisma.sql`j.model = ${filter.model}`);
  if (filter.errorCode !== undefined) conditions.push(Prisma.sql`j.error_code = ${filter.errorCode}`);
  if (filter.batchId !== undefined) conditions.push(Prisma.sql`j.batch_id = ${filter.batchId}::uuid`);
  if (filter.priority !== undefined) conditions.push(Prisma.sql`j.priority = ${filter.priority}::int`);
  if (filter.createdFrom !== undefined)
    conditions.push(Prisma.sql`j.created_at >= ${filter.createdFrom}::timestamptz`);
  if (filter.createdTo !== undefined)
    conditions.push(Prisma.sql`j.created_at < ${filter.createdTo}::timestamptz`);
  if (filter.metadata !== undefined) conditions.push(...metadataConditions(filter.metadata));
  if (filter.cursor !== undefined) conditions.push(Prisma.sql`j.id < ${filter.cursor}::uuid`);
  return conditions.length === 0 ? Prisma.sql`TRUE` : Prisma.join(conditions, " AND ");
}

/**
 * Metadata pairs as containments the GIN index serves: the exact pairs in one `@>`, and
 * for each string that also reads as a JSON number, boolean or null (a query string
 * carries only strings: `tier:3`) a choice of the string and that value, so metadata
 * stored as `{"tier": 3}` is found as `{"tier": "3"}` is.
 */
function metadataConditions(metadata: NonNullable<JobSearchFilter["metadata"]>): Prisma.Sql[] {
  const exact: Record<string, unknown> = {};
  const conditions: Prisma.Sql[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    const scalar = typeof value === "string" ? jsonScalar(value) : undefined;
    if (scalar === undefined) {
      exact[key] = value;
      continue;
    }
    conditions.push(Prisma.sql`(j.metadata @> ${JSON.stringify({ [key]: value })}::jsonb
      OR j.metadata @> ${JSON.stringify({ [key]: scalar })}::jsonb)`);
  }
  if (Object.keys(exact).length > 0)
    conditions.unshift(Prisma.sql`j.metadata @> ${JSON.stringify(exact)}::jsonb`);
  return conditions;
}

/** The number, boolean or null a string spells as JSON (`3`, `-1.5`, `true`, `null`), else undefined. */
function jsonScalar(text: string): number | boolean | null | undefined {
  if (text === "true") return true;
  if (text === "false") return false;
  if (text === "null") return null;
  if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}

/** Runs job searches; the filter → SQL lives in {@link jobSearchWhere}. */
export class JobSearch {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** A page of matching jobs, newest first. */
  async page(query: JobSearchQuery): Promise<JobSearchPage> {
    const ids = await this.#db.$queryRaw<Array<{ id: string }>>`
      SELECT j.id FROM jobs j WHERE ${jobSearchWhere(query)} ORDER BY j.id DESC LIMIT ${query.limit + 1}`;
    const hasMore = ids.length > query.limit;
    const pageIds = (hasMore ? ids.slice(0, query.limit) : ids).map((row) => row.id);
    const rows = await this.#db.job.findMany({ where: { id: { in: pageIds } }, orderBy: { id: "desc" } });
    return { jobs: rows, nextCursor: hasMore ? (pageIds.at(-1) ?? null) : null };
  }

  /** Ids of matching jobs, oldest first, at most `limit` (the redrive by filter). */
  async ids(filter: JobSearchFilter, limit: number): Promise<string[]> {
    const rows = await this.#db.$queryRaw<Array<{ id: string }>>`
      SELECT j.id FROM jobs j WHERE ${jobSearchWhere(filter)} ORDER BY j.id ASC LIMIT ${limit}`;
    return rows.map((row) => row.id);
  }

  /** How many jobs match (bounded by `cap`, so a broad filter stays cheap). */
  async count(filter: JobSearchFilter, cap: number): Promise<number> {
    const [row] = await this.#db.$queryRaw<Array<{ n: number }>>`
      SELECT count(*)::int AS n FROM (SELECT 1 FROM jobs j WHERE ${jobSearchWhere(filter)} LIMIT ${cap}) s`;
    return row?.n ?? 0;
  }

  /** The last provider call of each job (highest attempt, then seq), for dead-letter views. */
  async lastCalls(jobIds: readonly string[]): Promise<Map<string, LastCall>> {
    if (jobIds.length === 0) return new Map();
    const rows = await this.#db.$queryRaw<LastCallRow[]>`
      SELECT DISTINCT ON (c.job_id) c.job_id, c.job_attempt, c.seq, c.provider, c.model, c.key_id,
             c.started_at, c.latency_ms, c.outcome, c.error_code, c.error_message
        FROM provider_calls c WHERE c.job_id = ANY (${[...jobIds]}::uuid[])
       ORDER BY c.job_id, c.job_attempt DESC, c.seq DESC`;
    return new Map(
      rows.map((row) => [
        row.job_id,
        {
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
        },
      ]),
    );
  }
}

/** A job's last provider call. */
export interface LastCall {
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
}

interface LastCallRow {
  job_id: string;
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
}
