import { IdempotencyConflictError, type JobStatus, type JobType, newId } from "@genq/core";
import type pg from "pg";
import { type Database, sqlPool } from "./client.ts";
import type { Plan } from "./generated/prisma/enums.ts";
import type { NewJob } from "./job-repository.ts";
import type { JobRecord } from "./lifecycle/types.ts";

/** The limits of one plan, as the quota configuration gives them; null budget: none. */
export interface HoldPlanLimits {
  textTokens: number;
  images: number;
  monthlyBudgetMicroUsd?: number | null | undefined;
}

/**
 * The quota hold a job is admitted with: the same `quota_reservations` row and
 * `quota_usage.reserved` amounts `QuotaLedger.reserve` makes, so the worker settles,
 * releases and reclaims it as any other reservation.
 */
export interface AdmissionHold {
  /** The first day (UTC) of the month the amounts are held in. */
  periodStart: Date;
  /** Limits per plan; the user's own overrides (users row) win over them. */
  planLimits: Readonly<Record<Plan, HoldPlanLimits>>;
  textTokens: number;
  images: number;
  costMicroUsd: number;
  /**
   * Every provider the job may run on, when each accepts users' own keys: if the user
   * stored a key for all of them the job cannot touch a system key, and nothing is held.
   */
  userKeyProviders?: readonly string[] | undefined;
}

/** A job to admit: the row, its text output cap and its hold (undefined: no quota). */
export interface JobAdmissionRequest extends NewJob {
  /** The output cap every call of a text job sends (`jobs.reserved_output_tokens`); null for images. */
  reservedOutputTokens: number | null;
  hold: AdmissionHold | undefined;
}

/**
 * What {@link JobAdmission.admit} did. `created`: the job row and its hold are committed.
 * `repeated`: an earlier request under the same idempotency key made `job` (nothing
 * was held). `quota_exceeded`: nothing was written; the kind that did not fit, with
 * its figures this month.
 */
export type AdmissionOutcome =
  | { outcome: "created"; job: JobRecord }
  | { outcome: "repeated"; job: JobRecord }
  | {
      outcome: "quota_exceeded";
      kind: "text_tokens" | "images" | "cost_micro_usd";
      used: number;
      reserved: number;
      limit: number;
      requested: number;
    };

/** Options for {@link JobAdmission}. */
export interface JobAdmissionOptions {
  db: Database;
  /**
   * Send the statement as a named prepared statement (parsed and planned once per
   * connection). Behind PgBouncer in transaction mode this needs PgBouncer ≥ 1.21 with
   * `max_prepared_statements` set; false sends the same SQL unnamed.
   * @defaultValue true
   */
  preparedStatements?: boolean | undefined;
}

const ADMIT_SQL =
  'SELECT outcome, job, detail FROM admit_job($1::uuid, $2::uuid, $3::"JobType", $4::int, $5, $6, ' +
  "$7::jsonb, $8::jsonb, $9, $10, $11, $12::int, $13::date, $14::jsonb, $15::bigint, $16::int, " +
  "$17::bigint, $18::text[])";

interface AdmitRow {
  outcome: "created" | "repeated" | "quota_exceeded" | "user_missing";
  job: JobRow | null;
  detail: {
    kind: "text_tokens" | "images" | "cost_micro_usd";
    used: number;
    reserved: number;
    limit: number;
    requested: number;
  } | null;
}

/**
 * Admits jobs in one round trip: the idempotency lookup, the quota hold and the insert
 * are one call of the `admit_job` function (migration `20261203100000_job_admission`),
 * one statement on the pool the Prisma client runs on, all or nothing.
 */
export class JobAdmission {
  readonly #pool: pg.Pool;
  readonly #prepared: boolean;
  /** The plan limits as JSON, kept while the same object is passed (it rarely changes). */
  #limitsCache: { source: object; json: string } | undefined;

  constructor(options: JobAdmissionOptions) {
    this.#pool = sqlPool(options.db);
    this.#prepared = options.preparedStatements ?? true;
  }

  /**
   * Admits a job, or answers the job an earlier request made under its idempotency key
   * (before any quota check: a replay spends nothing). A different request under a used
   * key throws {@link IdempotencyConflictError}.
   *
   * @throws {Error} when the user does not exist (the caller authenticated it).
   */
  async admit(request: JobAdmissionRequest): Promise<AdmissionOutcome> {
    const { hold } = request;
    const values = [
      newId(),
      request.userId,
      request.type,
      request.priority,
      request.provider ?? null,
      request.model ?? null,
      JSON.stringify(request.input),
      request.metadata === undefined ? null : JSON.stringify(request.metadata),
      request.webhookUrl ?? null,
      request.idempotencyKey ?? null,
      request.requestHash ?? null,
      request.reservedOutputTokens,
      hold === undefined ? null : hold.periodStart.toISOString().slice(0, 10),
      hold === undefined ? null : this.#limitsJson(hold.planLimits),
      hold?.textTokens ?? 0,
      hold?.images ?? 0,
      hold?.costMicroUsd ?? 0,
      hold?.userKeyProviders === undefined ? null : [...new Set(hold.userKeyProviders)],
    ];
    const query = this.#prepared
      ? { name: "genq_admit_job", text: ADMIT_SQL, values }
      : { text: ADMIT_SQL, values };
    const { rows } = await this.#pool.query<AdmitRow>(query);
    const row = rows[0];
    switch (row?.outcome) {
      case "created":
        return { outcome: "created", job: toJobRecord(required(row.job)) };
      case "repeated": {
        const job = toJobRecord(required(row.job));
        if (job.requestHash !== (request.requestHash ?? null)) {
          throw new IdempotencyConflictError(request.idempotencyKey ?? "", job.id);
        }
        return { outcome: "repeated", job };
      }
      case "quota_exceeded": {
        const detail = required(row.detail);
        return {
          outcome: "quota_exceeded",
          kind: detail.kind,
          used: Number(detail.used),
          reserved: Number(detail.reserved),
          limit: Number(detail.limit),
          requested: Number(detail.requested),
        };
      }
      default:
        throw new Error(`admit_job: user ${request.userId} does not exist`);
    }
  }

  #limitsJson(limits: Readonly<Record<Plan, HoldPlanLimits>>): string {
    if (this.#limitsCache?.source !== limits)
      this.#limitsCache = { source: limits, json: JSON.stringify(limits) };
    return this.#limitsCache.json;
  }
}

function required<T>(value: T | null): T {
  if (value === null) throw new Error("admit_job returned no row");
  return value;
}

/** A `jobs` row as `row_to_json` spells it. */
interface JobRow {
  id: string;
  user_id: string;
  type: JobType;
  status: JobStatus;
  priority: number;
  provider: string | null;
  model: string | null;
  input: JobRecord["input"];
  metadata: JobRecord["metadata"];
  result: JobRecord["result"];
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  postponements: number;
  postponed_since: string | null;
  progress: number;
  reserved_output_tokens: number | null;
  cancel_requested: boolean;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_micro_usd: number | null;
  price_version: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: string;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  batch_id: string | null;
  item_index: number | null;
  dispatched_at: string | null;
  webhook_url: string | null;
}

function toJobRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    userId: row.user_id,
    type: row.type,
    status: row.status,
    priority: row.priority,
    provider: row.provider,
    model: row.model,
    input: row.input,
    metadata: row.metadata,
    result: row.result,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    attempts: row.attempts,
    postponements: row.postponements,
    postponedSince: dateOrNull(row.postponed_since),
    progress: row.progress,
    reservedOutputTokens: row.reserved_output_tokens,
    cancelRequested: row.cancel_requested,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costMicroUsd: row.cost_micro_usd === null ? null : BigInt(row.cost_micro_usd),
    priceVersion: row.price_version,
    idempotencyKey: row.idempotency_key,
    requestHash: row.request_hash,
    createdAt: new Date(row.created_at),
    queuedAt: new Date(row.queued_at),
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
    updatedAt: new Date(row.updated_at),
    batchId: row.batch_id,
    itemIndex: row.item_index,
    dispatchedAt: dateOrNull(row.dispatched_at),
    webhookUrl: row.webhook_url,
  };
}

function dateOrNull(value: string | null): Date | null {
  return value === null ? null : new Date(value);
}
