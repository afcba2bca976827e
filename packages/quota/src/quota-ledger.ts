import { GenqError, NotFoundError } from "@genq/core";
import { type Database, type Plan, RESOLVE_ONE_HOLD_SQL, sqlPool, type TransactionClient } from "@genq/db";
import { type MonthEndProjection, projectMonthEndCost } from "./month-end-projection.ts";
import { DEFAULT_PLANS, PlanLimits, UserLimits } from "./plans.ts";
import { QuotaExceededError } from "./quota-exceeded-error.ts";
import { AMOUNT_FIELD, chargedTextTokens, type QuotaAmounts, type QuotaKind } from "./quota-kind.ts";
import { type QuotaPeriod, quotaPeriod, toDateLiteral } from "./quota-period.ts";
import { summarizeUsage, type UsageGroupBy, type UsageReport, type UsageRow } from "./usage-summary.ts";

/** Where a reservation is in its life: held, charged, or given back. */
export type ReservationStatus = "reserved" | "settled" | "released";

/** What one job holds against its user's quota (a `quota_reservations` row). */
export interface Reservation extends QuotaAmounts {
  jobId: string;
  userId: string;
  /** The month the amounts are held in, and charged to on settlement. */
  periodStart: Date;
  status: ReservationStatus;
  createdAt: Date;
  settledAt: Date | null;
  releasedAt: Date | null;
}

/** Amounts a job asks for; a missing or 0 amount is neither checked nor held. */
export interface QuotaRequest {
  userId: string;
  textTokens?: number | undefined;
  images?: number | undefined;
  costMicroUsd?: number | undefined;
}

/** A reservation for one job: the worst case it can use. */
export interface ReserveRequest extends QuotaRequest {
  jobId: string;
}

/**
 * What {@link QuotaLedger.reserve} did. `reserved`: the amounts are now held.
 * `already_reserved`: the job held a reservation already (a retried or recovered
 * job) and keeps that one. `already_settled`: the job was charged already; do not
 * run it again.
 */
export type ReserveResult =
  | { outcome: "reserved"; reservation: Reservation }
  | { outcome: "already_reserved"; reservation: Reservation }
  | { outcome: "already_settled"; reservation: Reservation };

/** What a job actually used, charged by {@link QuotaLedger.settle}. */
export interface SettleRequest extends QuotaAmounts {
  jobId: string;
}

/**
 * What {@link QuotaLedger.settle} did. Only `settled` changed anything; the others
 * say why nothing was charged (`no_reservation`: the job never reserved, as on a
 * user's own provider key).
 */
export type SettleOutcome = "settled" | "already_settled" | "released" | "no_reservation";

/** What {@link QuotaLedger.release} did; only `released` changed anything. */
export type ReleaseOutcome = "released" | "already_released" | "settled" | "no_reservation";

/** What one {@link QuotaLedger.reclaim} pass did. */
export interface ReclaimResult {
  /** Reservations of completed jobs, charged from their usage record. */
  settled: number;
  /** Reservations given back: failed or canceled jobs, completed jobs without usage, old queued jobs. */
  released: number;
}

/** One kind's figures this period; `limit` is null when unlimited (no budget). */
export interface QuotaKindStatus {
  used: number;
  reserved: number;
  limit: number | null;
}

/** A user's quota this period. */
export interface QuotaStatus {
  plan: Plan;
  periodStart: Date;
  resetsAt: Date;
  kinds: {
    textTokens: QuotaKindStatus & { limit: number };
    images: QuotaKindStatus & { limit: number };
    costMicroUsd: QuotaKindStatus;
  };
}

/** A usage report with the month-end cost projection. */
export interface UsageReportWithProjection extends UsageReport {
  projection: MonthEndProjection;
}

/** Options for {@link QuotaLedger}. */
export interface QuotaLedgerOptions {
  db: Database;
  /** Limits per plan; plans not given keep {@link DEFAULT_PLANS}. */
  plans?: Partial<Record<Plan, PlanLimits>> | undefined;
  /** The clock; periods and reservation ages are computed from it. */
  now?: (() => Date) | undefined;
  /**
   * Send the reservation statement prepared (named); false sends it unnamed, for
   * PgBouncer in transaction mode before 1.21 (`GENQ_DATABASE_PREPARED_STATEMENTS`).
   * @defaultValue true
   */
  preparedStatements?: boolean | undefined;
  /**
   * Told when a job used more than it reserved (a provider that ignored the output
   * cap, or counted differently). The job is charged its reservation, never more;
   * log the excess and count it (`genq_quota_settlement_excess_total`).
   */
  onSettlementExcess?: ((excess: SettlementExcess) => void) | undefined;
}

/** What a job used beyond its reservation, in one kind; charged at `held`, not `actual`. */
export interface SettlementExcess {
  jobId: string;
  userId: string;
  kind: QuotaKind;
  actual: number;
  held: number;
}

/** A user's plan and overrides, as read for a limit check. */
interface LimitSource {
  plan: Plan;
  textTokenLimit: bigint | null;
  imageLimit: number | null;
  monthlyBudgetMicroUsd: bigint | null;
}

interface ReservationRow {
  job_id: string;
  user_id: string;
  period_start: Date;
  text_tokens: bigint;
  images: number;
  cost_micro_usd: bigint;
  status: string;
  created_at: Date;
  settled_at: Date | null;
  released_at: Date | null;
}

/**
 * Kinds in the order their `quota_usage` rows are locked. Every statement that
 * locks more than one row of a user (reserve, settle, release) follows it, so two
 * of them can never wait on each other in a cycle.
 */
const LOCK_ORDER: readonly QuotaKind[] = ["text_tokens", "images", "cost_micro_usd"];

const RECLAIM_BATCH = 100;

/**
 * The quota ledger, kept in Postgres (the source of truth). Every job reserves its
 * worst case before the provider call, settles what it actually used after it, or
 * releases the reservation when it fails or is canceled. Reservations are keyed by
 * job id, so a retried or recovered job never holds two, and is charged once.
 *
 * The invariant, `used + reserved ≤ limit` per user, month and kind, is kept by
 * conditional UPDATEs (`... WHERE used + reserved + n <= limit`): Postgres
 * re-evaluates the condition on the latest row version after waiting for the row
 * lock, so concurrent reservations, from any number of processes, cannot
 * overshoot. Run at READ COMMITTED (Postgres' default).
 */
export class QuotaLedger {
  readonly #db: Database;
  readonly #prepared: boolean;
  /** The plans' limits as the reservation statement reads them. */
  readonly #plansJson: string;
  readonly #plans: Readonly<Record<Plan, PlanLimits>>;
  readonly #now: () => Date;
  readonly #onSettlementExcess: ((excess: SettlementExcess) => void) | undefined;
  /** The last reservation of each user queued in this process (see {@link QuotaLedger.reserve}). */
  readonly #reserving = new Map<string, Promise<unknown>>();

  constructor(options: QuotaLedgerOptions) {
    this.#db = options.db;
    const plans = { ...DEFAULT_PLANS };
    for (const [plan, limits] of Object.entries(options.plans ?? {}) as Array<[Plan, PlanLimits]>) {
      if (!(plan in DEFAULT_PLANS)) throw new TypeError(`QuotaLedger: unknown plan "${plan}"`);
      const parsed = PlanLimits.safeParse(limits);
      if (!parsed.success) {
        throw new TypeError(`QuotaLedger: invalid limits for plan "${plan}": ${parsed.error.message}`);
      }
      plans[plan] = parsed.data;
    }
    this.#plans = Object.freeze(plans);
    this.#plansJson = JSON.stringify(plans);
    this.#prepared = options.preparedStatements ?? true;
    this.#now = options.now ?? (() => new Date());
    this.#onSettlementExcess = options.onSettlementExcess;
  }

  /** The limits a plan has in this ledger's configuration. */
  planLimits(plan: Plan): PlanLimits {
    return this.#plans[plan];
  }

  /**
   * What a hold taken outside this class (a job's admission, `JobAdmission` of
   * @genq/db) needs to hold as {@link QuotaLedger.reserve} would: the month by this
   * ledger's clock, and the limits of every plan (a user's overrides win over them).
   */
  holdTerms(): { period: QuotaPeriod; planLimits: Readonly<Record<Plan, PlanLimits>> } {
    return { period: quotaPeriod(this.#now()), planLimits: this.#plans };
  }

  /**
   * Holds a job's worst case against its user's quota, in one transaction: every
   * kind fits, or nothing is held and {@link QuotaExceededError} is thrown.
   * Idempotent per job: a job that holds a reservation keeps it (a retry does not
   * reserve twice); a released one (after a failed attempt or a reclaim) is held
   * again with the new amounts, in the current month.
   *
   * Reservations of one user run one at a time in each process. Postgres
   * serializes them on the user's `quota_usage` rows anyway; queueing them here
   * keeps the waiters off the connection pool, which the rest of the worker (claim,
   * complete, fail) needs meanwhile.
   *
   * @throws {QuotaExceededError} when an amount does not fit.
   * @throws {NotFoundError} when the job does not exist or is not the user's.
   */
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const previous = this.#reserving.get(request.userId) ?? Promise.resolve();
    const reservation = previous.then(() => this.#reserve(request));
    const settled = reservation.catch(() => undefined);
    this.#reserving.set(request.userId, settled);
    try {
      return await reservation;
    } finally {
      if (this.#reserving.get(request.userId) === settled) this.#reserving.delete(request.userId);
    }
  }

  async #reserve(request: ReserveRequest): Promise<ReserveResult> {
    const amounts = requestedAmounts(request);
    const now = this.#now();
    const period = quotaPeriod(now);
    const values = [
      request.jobId,
      request.userId,
      toDateLiteral(period.start),
      now,
      this.#plansJson,
      amounts.textTokens,
      amounts.images,
      amounts.costMicroUsd,
    ];
    const { rows } = await sqlPool(this.#db).query<{
      outcome: string;
      reservation: ReservationJson | null;
      detail: { kind: QuotaKind; used: number; reserved: number; limit: number; requested: number } | null;
    }>(
      this.#prepared
        ? { name: "genq_reserve_job_hold", text: RESERVE_SQL, values }
        : { text: RESERVE_SQL, values },
    );
    const [row] = rows;
    if (row === undefined || row.outcome === "job_missing") throw new NotFoundError("job", request.jobId);
    if (row.outcome === "quota_exceeded" && row.detail !== null) {
      throw new QuotaExceededError({
        kind: row.detail.kind,
        used: Number(row.detail.used),
        reserved: Number(row.detail.reserved),
        limit: Number(row.detail.limit),
        requested: Number(row.detail.requested),
        resetsAt: period.resetsAt,
      });
    }
    if (row.reservation === null)
      throw new GenqError("internal_error", `no reservation for job ${request.jobId}`);
    return {
      outcome: row.outcome as ReserveResult["outcome"],
      reservation: reservationFromJson(row.reservation),
    };
  }

  /**
   * Charges a job what it actually used and gives back the rest of its
   * reservation: `used += min(actual, held)`, `reserved -= held`, in the month
   * the reservation was made. A charge never exceeds the reservation, so
   * `used + reserved ≤ limit` holds after settlement too: an actual amount above
   * it (a provider that did more than the call allowed) is charged at the
   * reservation and reported to {@link QuotaLedgerOptions.onSettlementExcess}.
   * Idempotent: a settled reservation is not charged again.
   *
   * One statement (the SQL the job lifecycle folds into its completion), so it is
   * atomic on its own; the lifecycle settles in the statement that completes the job.
   */
  async settle(request: SettleRequest, transaction?: TransactionClient): Promise<SettleOutcome> {
    const actual = settledAmounts(request);
    const client = transaction ?? this.#db;
    const [result] = await client.$queryRawUnsafe<
      Array<{ resolved: number; excess: SettlementExcess[] | null }>
    >(
      RESOLVE_ONE_HOLD_SQL,
      request.jobId,
      "settle",
      actual.textTokens,
      actual.images,
      actual.costMicroUsd,
      this.#now(),
    );
    if (result?.resolved === 1) {
      for (const excess of result.excess ?? []) {
        this.#onSettlementExcess?.({ ...excess, actual: Number(excess.actual), held: Number(excess.held) });
      }
      return "settled";
    }
    const status = await this.#reservationStatus(client, request.jobId);
    if (status === null) return "no_reservation";
    return status === "settled" ? "already_settled" : "released";
  }

  /**
   * Gives back a job's whole reservation (the job failed or was canceled).
   * Idempotent; a settled reservation is left as it is. One statement, like
   * {@link QuotaLedger.settle}, so it can run in the caller's transaction.
   */
  async release(jobId: string, transaction?: TransactionClient): Promise<ReleaseOutcome> {
    const client = transaction ?? this.#db;
    const [result] = await client.$queryRawUnsafe<Array<{ resolved: number }>>(
      RESOLVE_ONE_HOLD_SQL,
      jobId,
      "release",
      0,
      0,
      0,
      this.#now(),
    );
    if (result?.resolved === 1) return "released";
    const status = await this.#reservationStatus(client, jobId);
    if (status === null) return "no_reservation";
    return status === "released" ? "already_released" : "settled";
  }

  /**
   * Resolves reservations whose worker is gone: a completed job with a usage
   * record is settled from it; a failed or canceled job (or a completed one
   * without usage) is released. Queued and active jobs are left alone: a queued
   * job's hold is what its 202 promised (taken at admission, or kept across a
   * retry or postponement), however long it waits; an active job's worker, or
   * BullMQ's stall recovery, still owns it. `olderThanMs` is no longer used (queued
   * holds were released after it when the worker, not the API, took them).
   * Each step is the same conditional statement settle and release use, so
   * several processes can reclaim at once, and race the workers, without
   * charging or releasing anything twice.
   */
  async reclaim(_options: { olderThanMs?: number } = {}): Promise<ReclaimResult> {
    const result: ReclaimResult = { settled: 0, released: 0 };
    let after = { createdAt: new Date(0).toISOString(), jobId: "00000000-0000-0000-0000-000000000000" };
    for (;;) {
      const candidates = await this.#db.$queryRaw<
        Array<{
          job_id: string;
          created_at: Date;
          job_status: string;
          has_usage: boolean;
          input_tokens: number | null;
          output_tokens: number | null;
          images: number | null;
          cost_micro_usd: bigint | null;
        }>
      >`
        SELECT r.job_id, r.created_at, j.status::text AS job_status, u.id IS NOT NULL AS has_usage,
               u.input_tokens, u.output_tokens, u.images, u.cost_micro_usd
          FROM quota_reservations r
          JOIN jobs j ON j.id = r.job_id
          LEFT JOIN usage_records u ON u.job_id = r.job_id
         WHERE r.status = 'reserved'
           AND j.status IN ('completed', 'failed', 'canceled')
           AND (r.created_at, r.job_id) > (${after.createdAt}::timestamptz, ${after.jobId}::uuid)
         ORDER BY r.created_at, r.job_id
         LIMIT ${RECLAIM_BATCH}`;
      for (const candidate of candidates) {
        if (candidate.job_status === "completed" && candidate.has_usage) {
          const outcome = await this.settle({
            jobId: candidate.job_id,
            textTokens: chargedTextTokens({
              inputTokens: candidate.input_tokens ?? 0,
              outputTokens: candidate.output_tokens ?? 0,
            }),
            images: candidate.images ?? 0,
            costMicroUsd: Number(candidate.cost_micro_usd ?? 0n),
          });
          if (outcome === "settled") result.settled += 1;
        } else if ((await this.release(candidate.job_id)) === "released") {
          result.released += 1;
        }
      }
      const last = candidates.at(-1);
      if (last === undefined || candidates.length < RECLAIM_BATCH) return result;
      after = { createdAt: last.created_at.toISOString(), jobId: last.job_id };
    }
  }

  /**
   * The submit-time check (read-only): throws when the amounts cannot fit this
   * month beside what is used and reserved now. Advisory: the reservation the
   * worker makes is the authoritative check.
   *
   * @throws {QuotaExceededError} when an amount does not fit.
   * @throws {NotFoundError} when the user does not exist.
   */
  async check(request: QuotaRequest): Promise<void> {
    const amounts = requestedAmounts(request);
    const status = await this.status(request.userId);
    for (const kind of LOCK_ORDER) {
      const field = AMOUNT_FIELD[kind];
      const requested = amounts[field];
      const { used, reserved, limit } = status.kinds[field];
      if (requested === 0 || limit === null || used + reserved + requested <= limit) continue;
      throw new QuotaExceededError({ kind, used, reserved, limit, requested, resetsAt: status.resetsAt });
    }
  }

  /**
   * A user's quota this month: used, reserved and limit per kind (the cost limit
   * is null without a budget), and when the counters reset.
   *
   * @throws {NotFoundError} when the user does not exist.
   */
  async status(userId: string): Promise<QuotaStatus> {
    const period = quotaPeriod(this.#now());
    const user = await this.#db.user.findUnique({
      where: { id: userId },
      select: {
        plan: true,
        textTokenLimit: true,
        imageLimit: true,
        monthlyBudgetMicroUsd: true,
        quotaUsage: {
          where: { periodStart: period.start },
          select: { kind: true, used: true, reserved: true },
        },
      },
    });
    if (user === null) throw new NotFoundError("user", userId);
    const limits = this.#limits(user);
    const figures = (kind: QuotaKind) => {
      const row = user.quotaUsage.find((candidate) => candidate.kind === kind);
      return { used: Number(row?.used ?? 0n), reserved: Number(row?.reserved ?? 0n) };
    };
    return {
      plan: user.plan,
      periodStart: period.start,
      resetsAt: period.resetsAt,
      kinds: {
        textTokens: { ...figures("text_tokens"), limit: limits.text_tokens },
        images: { ...figures("images"), limit: limits.images },
        costMicroUsd: { ...figures("cost_micro_usd"), limit: limits.cost_micro_usd },
      },
    };
  }

  /**
   * Sets a user's own limits. A field left out is unchanged; null clears the
   * override, so the plan's limit applies again. Takes effect for the next
   * reservation; what is reserved already stays reserved.
   *
   * @throws {NotFoundError} when the user does not exist.
   */
  async setUserLimits(userId: string, limits: UserLimits): Promise<UserLimits> {
    const parsed = UserLimits.safeParse(limits);
    if (!parsed.success) {
      throw new GenqError("invalid_request", `invalid quota limits: ${parsed.error.message}`, {
        details: { issues: parsed.error.issues },
      });
    }
    const bigintOrNull = (value: number | null) => (value === null ? null : BigInt(value));
    const { textTokenLimit, imageLimit, monthlyBudgetMicroUsd } = parsed.data;
    const [user] = await this.#db.user.updateManyAndReturn({
      where: { id: userId },
      data: {
        ...(textTokenLimit === undefined ? {} : { textTokenLimit: bigintOrNull(textTokenLimit) }),
        ...(imageLimit === undefined ? {} : { imageLimit }),
        ...(monthlyBudgetMicroUsd === undefined
          ? {}
          : { monthlyBudgetMicroUsd: bigintOrNull(monthlyBudgetMicroUsd) }),
      },
      select: { textTokenLimit: true, imageLimit: true, monthlyBudgetMicroUsd: true },
    });
    if (user === undefined) throw new NotFoundError("user", userId);
    return {
      textTokenLimit: numberOrNull(user.textTokenLimit),
      imageLimit: user.imageLimit,
      monthlyBudgetMicroUsd: numberOrNull(user.monthlyBudgetMicroUsd),
    };
  }

  /**
   * A user's usage from the usage records in `[from, to)`: totals, the same
   * figures per day (UTC), provider, model or job type, and the month-end cost
   * projection for the current month.
   */
  async usageReport(query: {
    userId: string;
    from: Date;
    to: Date;
    groupBy: UsageGroupBy;
  }): Promise<UsageReportWithProjection> {
    if (!(query.from.getTime() < query.to.getTime())) {
      throw new GenqError("invalid_request", "`from` must be before `to`", {
        details: { from: query.from.toISOString(), to: query.to.toISOString() },
      });
    }
    const now = this.#now();
    const period = quotaPeriod(now);
    const [rows, monthCost] = await Promise.all([
      this.#db.$queryRaw<UsageRow[]>`
        SELECT to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, u.provider, u.model,
               u.job_type::text AS type, count(*)::int AS jobs,
               sum(u.input_tokens)::bigint AS input_tokens,
               sum(u.cached_input_tokens)::bigint AS cached_input_tokens,
               sum(u.output_tokens)::bigint AS output_tokens,
               sum(u.reasoning_tokens)::bigint AS reasoning_tokens,
               sum(u.images)::bigint AS images,
               sum(u.cost_micro_usd)::bigint AS cost_micro_usd,
               sum(COALESCE(u.online_cost_micro_usd, u.cost_micro_usd))::bigint AS online_cost_micro_usd
          FROM usage_records u
         WHERE u.user_id = ${query.userId}::uuid
           AND u.created_at >= ${query.from.toISOString()}::timestamptz
           AND u.created_at < ${query.to.toISOString()}::timestamptz
         GROUP BY 1, 2, 3, 4`,
      this.#db.$queryRaw<Array<{ cost: bigint }>>`
        SELECT coalesce(sum(cost_micro_usd), 0)::bigint AS cost FROM usage_records
         WHERE user_id = ${query.userId}::uuid
           AND created_at >= ${period.start.toISOString()}::timestamptz
           AND created_at < ${now.toISOString()}::timestamptz`,
    ]);
    return {
      ...summarizeUsage(rows, query),
      projection: projectMonthEndCost({ costSoFarMicroUsd: Number(monthCost[0]?.cost ?? 0n), now }),
    };
  }

  /** The limit per kind: the user's override, else the plan's; null is unlimited. */
  #limits(user: LimitSource): KindLimits {
    const plan = this.#plans[user.plan];
    return {
      text_tokens: numberOrNull(user.textTokenLimit) ?? plan.textTokens,
      images: user.imageLimit ?? plan.images,
      cost_micro_usd: numberOrNull(user.monthlyBudgetMicroUsd) ?? plan.monthlyBudgetMicroUsd ?? null,
    };
  }

  /** A job's reservation, or null when it never reserved. */
  async reservation(jobId: string): Promise<Reservation | null> {
    return this.#findReservation(this.#db, jobId);
  }

  async #findReservation(client: TransactionClient, jobId: string): Promise<Reservation | null> {
    const [row] = await client.$queryRaw<ReservationRow[]>`
      SELECT job_id, user_id, period_start, text_tokens, images, cost_micro_usd, status,
             created_at, settled_at, released_at
        FROM quota_reservations WHERE job_id = ${jobId}::uuid`;
    return row === undefined ? null : toReservation(row);
  }

  async #reservationStatus(client: TransactionClient, jobId: string): Promise<ReservationStatus | null> {
    const [row] = await client.$queryRaw<Array<{ status: string }>>`
      SELECT status FROM quota_reservations WHERE job_id = ${jobId}::uuid`;
    return row === undefined ? null : (row.status as ReservationStatus);
  }
}

/** The limit of each kind for one user; the cost budget is null when there is none. */
interface KindLimits {
  text_tokens: number;
  images: number;
  cost_micro_usd: number | null;
}

function toReservation(row: ReservationRow): Reservation {
  return {
    jobId: row.job_id,
    userId: row.user_id,
    periodStart: row.period_start,
    textTokens: Number(row.text_tokens),
    images: row.images,
    costMicroUsd: Number(row.cost_micro_usd),
    // Only this class writes the column, from a ReservationStatus.
    status: row.status as ReservationStatus,
    createdAt: row.created_at,
    settledAt: row.settled_at,
    releasedAt: row.released_at,
  };
}

function numberOrNull(value: bigint | null): number | null {
  return value === null ? null : Number(value);
}

const MAX_INT32 = 2_147_483_647;

function checkAmount(name: keyof QuotaAmounts, value: number): number {
  const max = name === "images" ? MAX_INT32 : Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new GenqError("invalid_request", `${name} must be an integer from 0 to ${max}, got ${value}`, {
      details: { field: name, value },
    });
  }
  return value;
}

function requestedAmounts(request: QuotaRequest): QuotaAmounts {
  return {
    textTokens: checkAmount("textTokens", request.textTokens ?? 0),
    images: checkAmount("images", request.images ?? 0),
    costMicroUsd: checkAmount("costMicroUsd", request.costMicroUsd ?? 0),
  };
}

function settledAmounts(request: SettleRequest): QuotaAmounts {
  return {
    textTokens: checkAmount("textTokens", request.textTokens),
    // Settled images travel as bigint in SQL; the int32 bound only matters for reservations.
    images: checkAmount("images", request.images),
    costMicroUsd: checkAmount("costMicroUsd", request.costMicroUsd),
  };
}

/** Reserves a job's hold in one statement (migration `20261203110000_reserve_job_hold`). */
const RESERVE_SQL = `SELECT outcome, reservation, detail
  FROM reserve_job_hold($1::uuid, $2::uuid, $3::date, $4::timestamptz, $5::jsonb, $6::bigint, $7::int, $8::bigint)`;

/** A `quota_reservations` row as `row_to_json` spells it. */
interface ReservationJson {
  job_id: string;
  user_id: string;
  period_start: string;
  text_tokens: number;
  images: number;
  cost_micro_usd: number;
  status: string;
  created_at: string;
  settled_at: string | null;
  released_at: string | null;
}

function reservationFromJson(row: ReservationJson): Reservation {
  const date = (value: string | null) => (value === null ? null : new Date(value));
  return {
    jobId: row.job_id,
    userId: row.user_id,
    periodStart: new Date(`${row.period_start}T00:00:00.000Z`),
    textTokens: Number(row.text_tokens),
    images: Number(row.images),
    costMicroUsd: Number(row.cost_micro_usd),
    // Only this ledger and the lifecycle write the column, from a ReservationStatus.
    status: row.status as ReservationStatus,
    createdAt: new Date(row.created_at),
    settledAt: date(row.settled_at),
    releasedAt: date(row.released_at),
  };
}
