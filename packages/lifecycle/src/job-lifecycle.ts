import { type GenqEvent, type JobStatus, type JobType, NotFoundError, newId } from "@genq/core";
import {
  type AdmissionHold,
  batchCompletedEvent,
  type ClaimLimits,
  type ClaimOutcome,
  createJobFinishedHooks,
  type Database,
  FINISHED_JOB_SELECT,
  type FinishedJob,
  type HoldExcess,
  type JobCompletion,
  type JobFailure,
  type JobFinishedHooks,
  JobNotCancelableError,
  type JobRecord,
  jobFinishedEvents,
  type Plan,
  type Prisma,
  type ProviderCallRecord,
  type QuotaCharge,
  RESOLVE_ONE_HOLD_SQL,
  sqlPool,
  toFinishedJob,
} from "@genq/db";
import { toJobRecord } from "./job-row.ts";
import { intLiteral, SqlClient, type SqlClientOptions, uuidLiteral } from "./sql-client.ts";
import { StatementGroup } from "./statement-group.ts";
import {
  CLAIM,
  CLAIM_MANY,
  CLAIM_MISS,
  COMPLETE,
  COMPLETE_MANY,
  claimCappedScript,
  FINISH,
  REDRIVE,
  REQUEUE,
} from "./statements.ts";

/**
 * The general path's transactions wait longer than Prisma's defaults (2 s to start,
 * 5 s to run): they settle on the user's hot `quota_usage` rows, where they queue
 * behind concurrent holds, and giving up would throw away a result already paid for.
 */
const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 10_000 } as const;

const ACTIVE_OR_QUEUED: JobStatus[] = ["queued", "active"];

/** Jobs a user's disabling cancels per transaction. */
const USER_CANCEL_CHUNK = 5_000;
const DISABLED_MESSAGE = "canceled because the account was disabled";

/** Per-user advisory locks of claims: serialize one user's capped claims, nobody else's. */
const CLAIM_LOCK_CLASS = 0x67656e71; // "genq"

/** A cap no plan reaches (the script needs a number for every plan). */
const NO_CAP = 2_147_483_647;

/** Options for {@link JobLifecycle}. */
export interface JobLifecycleOptions {
  db: Database;
  /**
   * The effects of finished jobs beyond their own rows and holds: batch counters
   * and events, the webhook outbox, live publication. Default: batch counters only.
   */
  effects?: JobFinishedHooks | undefined;
  /** Told when a settlement found usage above the hold (charged at the hold). */
  onSettlementExcess?: ((excess: HoldExcess) => void) | undefined;
  /** How hot-path SQL travels (prepared statements or not). */
  sql?: SqlClientOptions | undefined;
  /**
   * Group commit: completions that arrive while one is being written go out
   * together in one statement (up to {@link MAX_GROUP}), one commit for all, and
   * each caller is answered after it. No completion waits for a timer: a lone one
   * is written at once. @defaultValue true
   */
  groupCommit?: boolean | undefined;
}

/** The most claims or completions one grouped statement writes. */
const MAX_GROUP = 100;

/** A completion for the folded statement. */
interface Folded {
  completion: JobCompletion;
  charge: QuotaCharge | "keep";
}

/** What {@link JobLifecycle.cancel} did. */
export interface CancelResult {
  job: JobRecord;
  /** The job was running: its worker cancels it at the next safe point. */
  wasActive: boolean;
}

/** A failed job to run again ({@link JobLifecycle.redrive}). */
export interface RedriveRequest {
  jobId: string;
  /** The owner, for a user's own retry (another user's job is not found); absent: an operator's redrive. */
  userId?: string | undefined;
  /** The output cap the new run's calls send (text jobs); absent keeps the row's. */
  reservedOutputTokens?: number | null | undefined;
  /** The quota hold the new run is admitted with, as a new submission's; absent: no quota. */
  hold: AdmissionHold | undefined;
}

/**
 * What {@link JobLifecycle.redrive} did. `redriven`: the job is `queued` again with its
 * hold (the caller puts it on its queue). Otherwise nothing was written: the job is
 * absent (or another user's), not `failed`, an item of a canceled batch, or its new
 * hold does not fit the owner's quota (the kind that did not fit, with its figures).
 */
export type RedriveOutcome =
  | { outcome: "redriven"; job: JobRecord }
  | { outcome: "not_found" }
  | { outcome: "not_failed"; status: JobStatus }
  | { outcome: "batch_canceled"; batchId: string }
  | {
      outcome: "quota_exceeded";
      kind: "text_tokens" | "images" | "cost_micro_usd";
      used: number;
      reserved: number;
      limit: number;
      requested: number;
    };

/** What a terminal transition finished, and the events its effects reported. */
interface Finished {
  jobs: readonly FinishedJob[];
  events: readonly GenqEvent[];
}

const NOTHING_FINISHED: Finished = { jobs: [], events: [] };

/**
 * The one owner of a job's life: every transition (claim, complete, retry,
 * postpone, fail, cancel) is a method here, a conditional update on the job's
 * current status, so concurrent workers, retries and cancels can race without a
 * job leaving a terminal status or being charged twice. The table of transitions
 * is in this directory's README.
 *
 * On the hot path each transition is one statement through `pg` (prepared, on the
 * pool the Prisma client uses); finishing a job whose effects go beyond its own
 * rows and its quota hold (a batch item, a webhook) runs the general path: one
 * transaction that runs every effect.
 */
export class JobLifecycle {
  readonly #db: Database;
  readonly #sql: SqlClient;
  readonly #effects: JobFinishedHooks;
  readonly #onSettlementExcess: ((excess: HoldExcess) => void) | undefined;
  readonly #groupCommit: boolean;
  readonly #completions: StatementGroup<Folded, boolean>;
  readonly #claims: StatementGroup<string, Record<string, unknown> | undefined>;

  constructor(options: JobLifecycleOptions) {
    this.#db = options.db;
    this.#sql = new SqlClient(sqlPool(options.db), options.sql);
    this.#effects = options.effects ?? createJobFinishedHooks();
    this.#onSettlementExcess = options.onSettlementExcess;
    this.#groupCommit = options.groupCommit ?? true;
    this.#completions = new StatementGroup({
      write: async (group) => {
        const completed = await this.#completeFolded(group);
        return group.map(({ completion }) => completed.has(completion.jobId));
      },
      keyOf: ({ completion }) => completion.jobId,
      maxSize: MAX_GROUP,
    });
    this.#claims = new StatementGroup({
      write: (jobIds) => this.#claimRows(jobIds),
      keyOf: (jobId) => jobId,
      maxSize: MAX_GROUP,
    });
  }

  /** The effects finished jobs run, for code that finishes jobs in its own transactions (batch cancel). */
  get effects(): JobFinishedHooks {
    return this.#effects;
  }

  /**
   * Claims a job for an attempt: queued/active → active, `attempts` + 1. A job of a
   * disabled user is canceled instead (it must not run, and must not wait in the
   * queue forever); given `limits.tenantCap`, a job whose owner already runs its
   * cap of jobs is left queued (`tenant_busy`), the count and the claim serialized
   * per owner by an advisory lock so concurrent claims never overshoot the cap.
   */
  async claim(jobId: string, limits: ClaimLimits = {}): Promise<ClaimOutcome> {
    const outcome =
      limits.tenantCap === undefined
        ? await this.#claimUncapped(jobId)
        : await this.#claimCapped(jobId, limits.tenantCap);
    if (outcome.outcome === "user_disabled") {
      await this.#finishGeneral(
        { id: jobId, status: { in: ACTIVE_OR_QUEUED } },
        {
          status: "canceled",
          cancelRequested: true,
          errorCode: "canceled",
          errorMessage: DISABLED_MESSAGE,
          finishedAt: new Date(),
        },
        undefined,
        undefined,
      );
    }
    return outcome;
  }

  async #claimUncapped(jobId: string): Promise<ClaimOutcome> {
    const row = this.#groupCommit ? await this.#claims.add(jobId) : (await this.#claimRows([jobId]))[0];
    if (row !== undefined) return { outcome: "claimed", job: toJobRecord(row), held: row.held === true };
    const [miss] = await this.#sql.rows<{ status: JobStatus; disabled: boolean }>(CLAIM_MISS, [jobId]);
    const disabled = miss?.disabled && ACTIVE_OR_QUEUED.includes(miss.status);
    return { outcome: disabled ? "user_disabled" : "finished" };
  }

  /** Claims jobs in one statement; each job's claimed row, or undefined when it was not claimed. */
  async #claimRows(jobIds: readonly string[]): Promise<Array<Record<string, unknown> | undefined>> {
    if (jobIds.length === 1) return [(await this.#sql.rows<Record<string, unknown>>(CLAIM, [jobIds[0]]))[0]];
    const rows = await this.#sql.rows<Record<string, unknown>>(CLAIM_MANY, [jobIds]);
    const byId = new Map(rows.map((row) => [String(row.id), row]));
    return jobIds.map((jobId) => byId.get(jobId));
  }

  async #claimCapped(jobId: string, tenantCap: (plan: Plan) => number): Promise<ClaimOutcome> {
    const cap = (plan: Plan) => intLiteral(Math.min(NO_CAP, Math.max(0, Math.floor(tenantCap(plan)))));
    const [row] = await this.#sql.script<Record<string, unknown>>(
      claimCappedScript(uuidLiteral(jobId), intLiteral(CLAIM_LOCK_CLASS), {
        basic: cap("basic"),
        professional: cap("professional"),
        enterprise: cap("enterprise"),
      }),
    );
    if (row === undefined) return { outcome: "finished" };
    if (row.owner_disabled === true) return { outcome: "user_disabled" };
    if (row.id !== null && row.id !== undefined) {
      return { outcome: "claimed", job: toJobRecord(row), held: row.held === true };
    }
    const running = Number(row.running_count);
    const capValue = Number(row.tenant_cap);
    if (running >= capValue) {
      return { outcome: "tenant_busy", userId: String(row.owner_id), running, cap: capValue };
    }
    return { outcome: "finished" };
  }

  /**
   * Completes an active job and records its usage, its provider calls and the
   * settlement of its quota hold (`charge`; absent: the hold is left for the
   * reclaimer), atomically. Returns false (and leaves the job as it is) when the job
   * is no longer active, a cancel was requested meanwhile, or another delivery
   * claimed it since (its `attempts` is no longer `completion.attempt`); the usage
   * record is unique per job, so it is written once. The calls are recorded either
   * way: they happened.
   */
  async complete(completion: JobCompletion): Promise<boolean> {
    const charge = completion.charge ?? "keep";
    const taken = this.#groupCommit
      ? await this.#completions.add({ completion, charge })
      : (await this.#completeFolded([{ completion, charge }])).has(completion.jobId);
    return taken || this.#completeGeneral(completion, charge);
  }

  /**
   * Completes jobs whose finishing has no effect beyond their rows and holds, in one
   * statement; returns the ids it completed (the others take the general path).
   */
  async #completeFolded(group: readonly Folded[]): Promise<Set<string>> {
    type Row = Record<string, unknown> & { excess: HoldExcess[] | null };
    let rows: Row[];
    if (group.length === 1) {
      const [{ completion, charge }] = group as [{ completion: JobCompletion; charge: QuotaCharge | "keep" }];
      const amounts = typeof charge === "string" ? NO_CHARGE : charge;
      rows = await this.#sql.rows<Row>(COMPLETE, [
        completion.jobId,
        completion.attempt,
        JSON.stringify(completion.result ?? null),
        completion.provider,
        completion.model,
        completion.usage.inputTokens,
        completion.usage.outputTokens,
        completion.costMicroUsd,
        completion.priceVersion ?? null,
        newId(),
        completion.keyId ?? null,
        completion.usage.cachedInputTokens ?? 0,
        completion.usage.reasoningTokens ?? 0,
        completion.usage.images ?? 0,
        callsJson(completion.calls),
        typeof charge === "string" ? charge : "settle",
        amounts.textTokens,
        amounts.images,
        amounts.costMicroUsd,
      ]);
    } else {
      const input = group.map(({ completion, charge }) => {
        const amounts = typeof charge === "string" ? NO_CHARGE : charge;
        return {
          job_id: completion.jobId,
          attempt: completion.attempt,
          result: completion.result ?? null,
          provider: completion.provider,
          model: completion.model,
          input_tokens: completion.usage.inputTokens,
          output_tokens: completion.usage.outputTokens,
          cost: completion.costMicroUsd,
          price_version: completion.priceVersion ?? null,
          usage_id: newId(),
          key_id: completion.keyId ?? null,
          cached_input_tokens: completion.usage.cachedInputTokens ?? 0,
          reasoning_tokens: completion.usage.reasoningTokens ?? 0,
          images: completion.usage.images ?? 0,
          calls: callsRecords(completion.calls),
          mode: typeof charge === "string" ? charge : "settle",
          charge_text: amounts.textTokens,
          charge_images: amounts.images,
          charge_cost: amounts.costMicroUsd,
        };
      });
      rows = await this.#sql.rows<Row>(COMPLETE_MANY, [JSON.stringify(input)]);
    }
    if (rows.length === 0) return new Set();
    this.#reportExcess(rows[0]?.excess ?? null);
    const jobs = rows.map(finishedJob);
    this.#afterCommit({ jobs, events: [...jobFinishedEvents(jobs), ...batchesEnded(rows)] });
    return new Set(jobs.map((job) => job.id));
  }

  /**
   * Records a failed attempt that will be retried: the job waits in `queued` again.
   * Returns false when a cancel was requested meanwhile (the job is then canceled
   * instead) or another delivery claimed the job since; the caller must not retry
   * it either way. The attempt's calls are recorded whatever the outcome.
   */
  async retry(
    jobId: string,
    failure: JobFailure,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    const rows = await this.#sql.rows(REQUEUE, [
      jobId,
      attempt ?? null,
      failure.code,
      failure.message,
      false,
      null,
      callsJson(calls),
    ]);
    if (rows.length === 1) return true;
    await this.#recordCallsAlone(jobId, calls, attempt);
    await this.cancelIfRequested(jobId);
    return false;
  }

  /**
   * Puts an active job back to `queued` without an error: every provider candidate
   * was rate limited or resting, so the job waits in BullMQ's delayed set. Counted
   * in `postponements` (its `attempts` stays the claim count, so the calls of this
   * run stay filed under it); `postponedSince` keeps the first postponement's time.
   * False when the job is no longer active here (canceled, or claimed by another delivery).
   */
  async postpone(
    jobId: string,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
    postponedSince: Date = new Date(),
  ): Promise<boolean> {
    const rows = await this.#sql.rows(REQUEUE, [
      jobId,
      attempt ?? null,
      null,
      null,
      true,
      postponedSince,
      callsJson(calls),
    ]);
    if (rows.length === 1) return true;
    await this.#recordCallsAlone(jobId, calls, attempt);
    return false;
  }

  /**
   * Fails a job that is not finished yet, releasing its hold. False when it already
   * was or, given `attempt`, when another delivery claimed it since (a stale
   * delivery's failure must not end a run that is still going).
   */
  fail(
    jobId: string,
    failure: JobFailure,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    return this.#finish(jobId, {
      status: "failed",
      attempt,
      calls,
      failure,
      onlyIfCancelRequested: false,
    });
  }

  /**
   * Fails a job whose workers stopped responding too many times (BullMQ's stall
   * limit): it never reached a processor that could record its end, so the worker
   * pool records it here. False when the job already finished.
   */
  stallFail(jobId: string): Promise<boolean> {
    return this.fail(jobId, {
      code: "internal_error",
      message: "the workers running this job stopped responding too many times (stalled)",
    });
  }

  /**
   * Cancels an unfinished job whose cancel was requested, releasing its hold; true
   * when it did. `calls` and `attempt` (of an attempt the cancel interrupted) are recorded.
   */
  cancelIfRequested(
    jobId: string,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    return this.#finish(jobId, { status: "canceled", attempt, calls, onlyIfCancelRequested: true });
  }

  async #finish(
    jobId: string,
    change: {
      status: "failed" | "canceled";
      attempt: number | undefined;
      calls: readonly ProviderCallRecord[] | undefined;
      failure?: JobFailure;
      onlyIfCancelRequested: boolean;
    },
  ): Promise<boolean> {
    const [row] = await this.#sql.rows<Record<string, unknown>>(FINISH, [
      jobId,
      change.attempt ?? null,
      change.status,
      change.failure?.code ?? null,
      change.failure?.message ?? null,
      callsJson(change.calls),
      change.onlyIfCancelRequested,
    ]);
    if (row !== undefined) {
      const job = finishedJob(row);
      this.#afterCommit({ jobs: [job], events: [...jobFinishedEvents([job]), ...batchesEnded([row])] });
      return true;
    }
    return this.#finishGeneral(
      {
        id: jobId,
        // A worker's report (an attempt) ends only the job of that attempt; see FINISH.
        ...(change.attempt === undefined
          ? { status: { in: ACTIVE_OR_QUEUED } }
          : {
              attempts: change.attempt,
              OR: [{ status: "active" }, { status: "queued", postponedSince: { not: null } }],
            }),
        ...(change.onlyIfCancelRequested ? { cancelRequested: true } : {}),
      },
      change.failure === undefined
        ? { status: change.status, finishedAt: new Date() }
        : {
            status: change.status,
            errorCode: change.failure.code,
            errorMessage: change.failure.message,
            finishedAt: new Date(),
          },
      change.calls,
      change.attempt,
    );
  }

  /**
   * Cancels a user's job: a queued job is canceled now; an active one is flagged
   * and canceled by its worker at the next safe point. Canceling a canceled job is
   * a no-op; a completed or failed job cannot be canceled (409).
   */
  async cancel(userId: string, jobId: string): Promise<CancelResult> {
    const current = await this.#db.job.findUnique({ where: { id: jobId } });
    if (current === null || current.userId !== userId) throw new NotFoundError("job", jobId);
    const canceledQueued = await this.#finishGeneral(
      { id: jobId, status: "queued" },
      {
        status: "canceled",
        cancelRequested: true,
        finishedAt: new Date(),
        errorCode: null,
        errorMessage: null,
      },
      undefined,
      undefined,
    );
    if (canceledQueued) return { job: await this.#findOwn(userId, jobId, current), wasActive: false };
    const flaggedActive = await this.#db.job.updateMany({
      where: { id: jobId, status: "active" },
      data: { cancelRequested: true },
    });
    if (flaggedActive.count === 1)
      return { job: await this.#findOwn(userId, jobId, current), wasActive: true };
    const now = (await this.#db.job.findUnique({ where: { id: jobId } })) ?? current;
    if (now.status === "canceled") return { job: now, wasActive: false };
    throw new JobNotCancelableError(jobId, now.status);
  }

  /**
   * Redrives a failed job: failed → queued, in one statement (`redrive_job`) that
   * takes the new run's quota hold as admission takes a new submission's (all kinds
   * or none), keeps the job's history (attempt numbers continue, so the calls of
   * earlier attempts stay filed under theirs) and, for a batch item, counts it as
   * pending on its batch again (a completed batch runs again, and completes again when
   * its last item finishes). Only `failed` jobs are redriven. The caller queues the
   * job (a new BullMQ entry: a fresh attempt budget).
   */
  async redrive(request: RedriveRequest): Promise<RedriveOutcome> {
    const { hold } = request;
    const [row] = await this.#sql.rows<{ outcome: string; detail: Record<string, unknown> | null }>(REDRIVE, [
      request.jobId,
      request.userId ?? null,
      request.reservedOutputTokens ?? null,
      hold === undefined ? null : hold.periodStart.toISOString().slice(0, 10),
      hold === undefined ? null : JSON.stringify(hold.planLimits),
      hold?.textTokens ?? 0,
      hold?.images ?? 0,
      hold?.costMicroUsd ?? 0,
      hold?.userKeyProviders === undefined ? null : [...new Set(hold.userKeyProviders)],
    ]);
    const detail = row?.detail ?? {};
    switch (row?.outcome) {
      case "redriven": {
        const job = await this.#db.job.findUnique({ where: { id: request.jobId } });
        if (job === null) return { outcome: "not_found" };
        return { outcome: "redriven", job };
      }
      case "not_failed":
        return { outcome: "not_failed", status: detail.status as JobStatus };
      case "batch_canceled":
        return { outcome: "batch_canceled", batchId: String(detail.batchId) };
      case "quota_exceeded":
        return {
          outcome: "quota_exceeded",
          kind: detail.kind as "text_tokens" | "images" | "cost_micro_usd",
          used: Number(detail.used),
          reserved: Number(detail.reserved),
          limit: Number(detail.limit),
          requested: Number(detail.requested),
        };
      default:
        return { outcome: "not_found" };
    }
  }

  async #findOwn(userId: string, jobId: string, fallback: JobRecord): Promise<JobRecord> {
    const job = await this.#db.job.findUnique({ where: { id: jobId } });
    return job !== null && job.userId === userId ? job : fallback;
  }

  /**
   * Stops everything a disabled user has pending: running batches are flagged
   * canceling (the dispatcher stops releasing their items), every queued job is
   * canceled in transactions of {@link USER_CANCEL_CHUNK} that run the finished-job
   * effects (holds released, batch counters, events), and running jobs are flagged
   * for their workers to cancel at the next safe point. Returns the canceled jobs
   * that had reached BullMQ (for the caller to remove) and the running ones (for
   * the caller to abort).
   */
  async cancelForDisabledUser(userId: string): Promise<{
    canceled: Array<{ id: string; type: JobType }>;
    running: Array<{ id: string; type: JobType }>;
  }> {
    await this.#db.batch.updateMany({
      where: { userId, status: "running" },
      data: { cancelRequested: true },
    });
    const canceled: Array<{ id: string; type: JobType }> = [];
    for (;;) {
      const page = await this.#db.job.findMany({
        where: { userId, status: "queued" },
        select: { id: true },
        orderBy: { id: "asc" },
        take: USER_CANCEL_CHUNK,
      });
      if (page.length === 0) break;
      const finished = await this.#db.$transaction(async (transaction) => {
        const rows = await transaction.job.updateManyAndReturn({
          where: { id: { in: page.map((job) => job.id) }, status: "queued" },
          data: {
            status: "canceled",
            cancelRequested: true,
            errorCode: "canceled",
            errorMessage: DISABLED_MESSAGE,
            finishedAt: new Date(),
          },
          select: FINISHED_JOB_SELECT,
        });
        return this.#runEffects(transaction, rows);
      }, TRANSACTION_OPTIONS);
      this.#afterCommit(finished);
      for (const job of finished.jobs)
        if (job.dispatchedAt !== null) canceled.push({ id: job.id, type: job.type });
    }
    const running = await this.#db.job.updateManyAndReturn({
      where: { userId, status: "active", cancelRequested: false },
      data: { cancelRequested: true },
      select: { id: true, type: true },
    });
    return { canceled, running };
  }

  // ---- the general path: one Prisma transaction running every effect ----

  async #completeGeneral(completion: JobCompletion, charge: QuotaCharge | "keep"): Promise<boolean> {
    let excess: HoldExcess[] | null = null;
    const finished = await this.#db.$transaction(async (transaction) => {
      const [updated] = await transaction.job.updateManyAndReturn({
        // Fenced on the claimed attempt: a stale delivery (its job stalled and was claimed
        // again) cannot complete the job, nor settle it a second time.
        where: {
          id: completion.jobId,
          status: "active",
          cancelRequested: false,
          attempts: completion.attempt,
        },
        data: {
          status: "completed",
          result: completion.result as Prisma.InputJsonValue,
          provider: completion.provider,
          model: completion.model,
          inputTokens: completion.usage.inputTokens,
          outputTokens: completion.usage.outputTokens,
          costMicroUsd: BigInt(completion.costMicroUsd),
          priceVersion: completion.priceVersion ?? null,
          errorCode: null,
          errorMessage: null,
          progress: 100,
          finishedAt: new Date(),
        },
        select: FINISHED_JOB_SELECT,
      });
      if (updated !== undefined) {
        await transaction.usageRecord.create({
          data: {
            id: newId(),
            userId: updated.userId,
            jobId: completion.jobId,
            jobType: updated.type,
            attempt: completion.attempt,
            provider: completion.provider,
            model: completion.model,
            keyId: completion.keyId ?? null,
            inputTokens: completion.usage.inputTokens,
            outputTokens: completion.usage.outputTokens,
            cachedInputTokens: completion.usage.cachedInputTokens ?? 0,
            reasoningTokens: completion.usage.reasoningTokens ?? 0,
            images: completion.usage.images ?? 0,
            costMicroUsd: BigInt(completion.costMicroUsd),
            priceVersion: completion.priceVersion ?? null,
          },
        });
        excess = await resolveHold(transaction, completion.jobId, charge);
      }
      await recordCalls(
        transaction,
        completion.jobId,
        completion.calls,
        completion.attempt,
        updated !== undefined,
      );
      return updated === undefined ? NOTHING_FINISHED : this.#runEffects(transaction, [updated]);
    }, TRANSACTION_OPTIONS);
    this.#reportExcess(excess);
    this.#afterCommit(finished);
    return finished.jobs.length === 1;
  }

  /**
   * Moves one unfinished job matching `where` to the terminal state `data` sets,
   * records the attempt's calls and runs the finished-job effects, in one
   * transaction; true when the job was moved.
   */
  async #finishGeneral(
    where: Prisma.JobWhereInput & { id: string },
    data: Prisma.JobUpdateManyMutationInput,
    calls: readonly ProviderCallRecord[] | undefined,
    attempt: number | undefined,
  ): Promise<boolean> {
    const finished = await this.#db.$transaction(async (transaction) => {
      const rows = await transaction.job.updateManyAndReturn({ where, data, select: FINISHED_JOB_SELECT });
      await recordCalls(transaction, where.id, calls, attempt, rows.length > 0);
      return this.#runEffects(transaction, rows);
    }, TRANSACTION_OPTIONS);
    this.#afterCommit(finished);
    return finished.jobs.length === 1;
  }

  async #recordCallsAlone(
    jobId: string,
    calls: readonly ProviderCallRecord[] | undefined,
    attempt: number | undefined,
  ): Promise<void> {
    if (calls === undefined || calls.length === 0) return;
    await this.#db.$transaction((transaction) => recordCalls(transaction, jobId, calls, attempt, false));
  }

  async #runEffects(
    transaction: Prisma.TransactionClient,
    rows: ReadonlyArray<Parameters<typeof toFinishedJob>[0]>,
  ): Promise<Finished> {
    if (rows.length === 0) return NOTHING_FINISHED;
    const jobs = rows.map(toFinishedJob);
    const events = (await this.#effects.inTransaction?.(transaction, jobs)) ?? [];
    return { jobs, events };
  }

  #afterCommit(finished: Finished): void {
    if (finished.jobs.length === 0 || this.#effects.afterCommit === undefined) return;
    try {
      this.#effects.afterCommit(finished.jobs, finished.events);
    } catch {
      // Notifications are best effort; the committed rows are the record.
    }
  }

  #reportExcess(excess: readonly HoldExcess[] | null): void {
    if (excess === null || this.#onSettlementExcess === undefined) return;
    for (const item of excess) {
      this.#onSettlementExcess({ ...item, actual: Number(item.actual), held: Number(item.held) });
    }
  }
}

/** Settles (or releases) one job's hold inside a Prisma transaction; the excess, if any. */
async function resolveHold(
  transaction: Prisma.TransactionClient,
  jobId: string,
  charge: QuotaCharge | "keep",
): Promise<HoldExcess[] | null> {
  if (charge === "keep") return null;
  const amounts = charge === "release" ? { textTokens: 0, images: 0, costMicroUsd: 0 } : charge;
  const [result] = await transaction.$queryRawUnsafe<Array<{ excess: HoldExcess[] | null }>>(
    RESOLVE_ONE_HOLD_SQL,
    jobId,
    charge === "release" ? "release" : "settle",
    amounts.textTokens,
    amounts.images,
    amounts.costMicroUsd,
    new Date(),
  );
  return result?.excess ?? null;
}

/**
 * The `batch.completed` events of the batches a folded statement ended (its rows carry
 * their batch's figures; several rows may name one batch). Such batches have no
 * webhook URL (the statement takes no item of one that has).
 */
function batchesEnded(rows: ReadonlyArray<Record<string, unknown>>): GenqEvent[] {
  const events = new Map<string, GenqEvent>();
  for (const row of rows) {
    if (row.just_finished !== true || typeof row.batch_id !== "string" || events.has(row.batch_id)) continue;
    events.set(
      row.batch_id,
      batchCompletedEvent(
        {
          id: row.batch_id,
          userId: String(row.batch_user_id),
          webhookUrl: null,
          total: Number(row.batch_total),
          completedCount: Number(row.batch_completed),
          failedCount: Number(row.batch_failed),
          canceledCount: Number(row.batch_canceled),
        },
        row.batch_status === "canceled" ? "canceled" : "completed",
        (row.batch_finished_at as Date | null) ?? new Date(),
      ),
    );
  }
  return [...events.values()];
}

/** A finished job from a folded statement's row (snake_case columns). */
function finishedJob(row: Record<string, unknown>): FinishedJob {
  return {
    id: String(row.id),
    userId: String(row.user_id),
    type: row.type as JobType,
    status: row.status as FinishedJob["status"],
    batchId: (row.batch_id as string | null) ?? null,
    itemIndex: (row.item_index as number | null) ?? null,
    dispatchedAt: (row.dispatched_at as Date | null) ?? null,
    webhookUrl: (row.webhook_url as string | null) ?? null,
    errorCode: (row.error_code as string | null) ?? null,
    errorMessage: (row.error_message as string | null) ?? null,
    finishedAt: (row.finished_at as Date | null) ?? null,
  };
}

const NO_CHARGE = { textTokens: 0, images: 0, costMicroUsd: 0 } as const;

/** An attempt's calls as the JSON the folded statements read (ids assigned here). */
function callsJson(calls: readonly ProviderCallRecord[] | undefined): string {
  return JSON.stringify(callsRecords(calls));
}

function callsRecords(calls: readonly ProviderCallRecord[] | undefined) {
  if (calls === undefined || calls.length === 0) return [];
  return calls.map((call) => ({
    id: newId(),
    seq: call.seq,
    provider: call.provider,
    model: call.model,
    key_id: call.keyId ?? null,
    started_at: call.startedAt.toISOString(),
    // Durations come from performance.now() differences; the column holds whole milliseconds.
    latency_ms: Math.round(call.latencyMs),
    outcome: call.outcome,
    error_code: call.errorCode ?? null,
    error_message: call.errorMessage ?? null,
    input_tokens: call.inputTokens ?? null,
    output_tokens: call.outputTokens ?? null,
  }));
}

/**
 * Writes an attempt's provider calls on the general path. A call already stored
 * under the same (job, attempt, seq) is kept as it is, so a re-delivered attempt
 * adds nothing. Calls of a job that no longer exists are dropped.
 */
async function recordCalls(
  transaction: Prisma.TransactionClient,
  jobId: string,
  calls: readonly ProviderCallRecord[] | undefined,
  attempt: number | undefined,
  rowUpdated = false,
): Promise<void> {
  if (calls === undefined || calls.length === 0) return;
  let jobAttempt = attempt;
  // The row's existence (and count) is only looked up when the caller did not just update it.
  if (jobAttempt === undefined || !rowUpdated) {
    const job = await transaction.job.findUnique({ where: { id: jobId }, select: { attempts: true } });
    if (job === null) return;
    jobAttempt = attempt ?? job.attempts;
  }
  await transaction.providerCall.createMany({
    data: calls.map((call) => ({
      id: newId(),
      jobId,
      jobAttempt,
      seq: call.seq,
      provider: call.provider,
      model: call.model,
      keyId: call.keyId ?? null,
      startedAt: call.startedAt,
      latencyMs: Math.round(call.latencyMs),
      outcome: call.outcome,
      errorCode: call.errorCode ?? null,
      errorMessage: call.errorMessage ?? null,
      inputTokens: call.inputTokens ?? null,
      outputTokens: call.outputTokens ?? null,
    })),
    skipDuplicates: true,
  });
}
