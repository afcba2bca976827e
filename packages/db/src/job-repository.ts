import {
  fingerprint,
  GenqError,
  type GenqEvent,
  IdempotencyConflictError,
  type JobStatus,
  type JobType,
  NotFoundError,
  newId,
  type TokenUsage,
} from "@genq/core";
import type { Database } from "./client.ts";
import type { Job, Plan, Prisma, ProviderCall } from "./generated/prisma/client.ts";
import {
  FINISHED_JOB_SELECT,
  type FinishedJob,
  type JobFinishedHooks,
  toFinishedJob,
} from "./job-finished.ts";
import { createJobFinishedHooks } from "./job-finished-hooks.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

/** A job row. */
export type JobRecord = Job;

/**
 * The client inside an interactive transaction (`db.$transaction(async (transaction) => ...)`),
 * for code that must write in the same transaction as a repository, such as the quota
 * settlement that {@link JobCompletion.onCompleted} runs.
 */
export type TransactionClient = Prisma.TransactionClient;

/**
 * The completing transaction waits longer than Prisma's defaults (2 s to start, 5 s to
 * run): `onCompleted` settles the quota on the user's hot `quota_usage` rows, where it
 * queues behind concurrent reservations, and giving up here would throw away a provider
 * result that was already paid for (the attempt would run again).
 */
const COMPLETE_TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 10_000 } as const;

/** What the API stores for a new job. */
export interface NewJob {
  userId: string;
  type: JobType;
  priority: number;
  provider?: string | undefined;
  model?: string | undefined;
  input: unknown;
  metadata?: unknown;
  idempotencyKey?: string | undefined;
  /** Hash of the normalized request, compared when the idempotency key repeats. */
  requestHash?: string | undefined;
  /** Where the job's events are POSTed (besides the user's webhook endpoints). */
  webhookUrl?: string | undefined;
}

/** A page of jobs, newest first. */
export interface JobPage {
  jobs: JobRecord[];
  nextCursor: string | null;
}

/** Filters for {@link JobRepository.list}. */
export interface JobListQuery {
  status?: JobStatus | undefined;
  type?: JobType | undefined;
  /** The id of the last job of the previous page. */
  cursor?: string | undefined;
  limit: number;
}

/**
 * How a provider call ended. `skipped`: the target was not called at all (its
 * circuit was open, it was rate limited, or no key was available).
 */
export type ProviderCallOutcome = "ok" | "error" | "skipped";

/**
 * One provider call the router made (or skipped) during an attempt. An attempt
 * has one or more: retries and fallbacks to other providers or keys each add one.
 */
export interface ProviderCallRecord {
  /** The call's order within its attempt, from 1. */
  seq: number;
  provider: string;
  model: string;
  /** The configured id of the provider key used; never the secret. */
  keyId?: string | undefined;
  startedAt: Date;
  /** Stored rounded to whole milliseconds. */
  latencyMs: number;
  outcome: ProviderCallOutcome;
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
}

/** A stored provider call, with the attempt of the job it belongs to. */
export interface JobProviderCall extends ProviderCallRecord {
  /** The job's `attempts` after the claim that ran the call. */
  jobAttempt: number;
}

/** Why an attempt failed, as stored on the job (a GenqError fits). */
export interface JobFailure {
  code: string;
  message: string;
}

/** What a finished attempt produced. */
export interface JobCompletion {
  jobId: string;
  /** The claimed row's `attempts`. */
  attempt: number;
  result: unknown;
  provider: string;
  model: string;
  /** Token counts, and the images an image job generated (stored on the usage record; 0 when absent). */
  usage: TokenUsage & { images?: number | undefined };
  costMicroUsd: number;
  /** The price catalog version the cost was computed with. */
  priceVersion?: string | undefined;
  /** The configured id of the provider key that produced the result; never the secret. */
  keyId?: string | undefined;
  /** Every provider call of this attempt, including the failed and skipped ones. */
  calls?: readonly ProviderCallRecord[] | undefined;
  /**
   * Runs inside the completing transaction, right after the usage record is written,
   * only when the job really completed (not when it was no longer active or a cancel
   * was requested). The quota settlement goes here, so the job is charged exactly
   * when it completes; a throw rolls the completion back.
   */
  onCompleted?: ((transaction: TransactionClient, job: { userId: string }) => Promise<void>) | undefined;
}

/** The hash that tells a repeated request from a different one under one idempotency key. */
export function requestFingerprint(value: unknown): string {
  return fingerprint(value);
}

/** A finished job (completed or failed) cannot be canceled. */
export class JobNotCancelableError extends GenqError {
  override readonly name = "JobNotCancelableError";
  constructor(
    readonly jobId: string,
    readonly status: JobStatus,
  ) {
    super("conflict", `job ${jobId} is already ${status} and can no longer be canceled`, {
      details: { jobId, status },
    });
  }
}

const ACTIVE_OR_QUEUED: JobStatus[] = ["queued", "active"];

/** Limits a claim checks besides the job's own state; see {@link JobRepository.claimFor}. */
export interface ClaimLimits {
  /**
   * The most jobs one user on `plan` may have running (status `active`) at once, over
   * every worker; absent: no cap.
   */
  tenantCap?: ((plan: Plan) => number) | undefined;
}

/**
 * What {@link JobRepository.claimFor} did. `claimed`: the job is the caller's to run.
 * `finished`: gone, finished or canceled (nothing to do). `user_disabled`: its owner
 * is disabled, and the job was canceled. `tenant_busy`: its owner already has
 * `cap` jobs running; the job was left queued, untouched.
 */
export type ClaimOutcome =
  | { outcome: "claimed"; job: JobRecord }
  | { outcome: "finished" | "user_disabled" }
  | { outcome: "tenant_busy"; userId: string; running: number; cap: number };

/** Jobs a user's disabling cancels per transaction. */
const USER_CANCEL_CHUNK = 5_000;
const DISABLED_MESSAGE = "canceled because the account was disabled";

/** Per-user advisory locks of claims: serialize one user's capped claims, nobody else's. */
const CLAIM_LOCK_CLASS = 0x67656e71; // "genq"

/** What a terminal transition finished, and the events its hook reported. */
interface Finished {
  jobs: readonly FinishedJob[];
  events: readonly GenqEvent[];
  length: number;
}

/**
 * Jobs in Postgres, the source of truth. Every state change is a conditional
 * update on the current status, so concurrent workers, retries and cancels can
 * race without a job leaving a terminal status or being settled twice.
 */
export class JobRepository {
  readonly #db: Database;
  readonly #hooks: JobFinishedHooks;

  /**
   * `hooks` default to {@link createJobFinishedHooks} without outbox or publisher:
   * batch counters are kept whatever the caller wires.
   */
  constructor(options: { db: Database; hooks?: JobFinishedHooks }) {
    this.#db = options.db;
    this.#hooks = options.hooks ?? createJobFinishedHooks();
  }

  /** The hooks run when jobs finish, for repositories that finish jobs too (batch cancel). */
  get hooks(): JobFinishedHooks {
    return this.#hooks;
  }

  /** Runs the in-transaction hook for rows a terminal update returned. */
  async #finishedInTransaction(
    transaction: Prisma.TransactionClient,
    rows: ReadonlyArray<Parameters<typeof toFinishedJob>[0]>,
  ): Promise<Finished> {
    const jobs = rows.map(toFinishedJob);
    const events = jobs.length > 0 ? ((await this.#hooks.inTransaction?.(transaction, jobs)) ?? []) : [];
    return { jobs, events, length: jobs.length };
  }

  #finishedAfterCommit(finished: Finished): void {
    if (finished.length === 0 || this.#hooks.afterCommit === undefined) return;
    try {
      this.#hooks.afterCommit(finished.jobs, finished.events);
    } catch {
      // Notifications are best effort; the committed rows are the record.
    }
  }

  /**
   * Inserts a job, or returns the existing one when the same user repeats an
   * idempotency key with the same request. A different request under a used key
   * throws {@link IdempotencyConflictError}.
   */
  async create(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    if (job.idempotencyKey !== undefined) {
      const existing = await this.#findByIdempotencyKey(job.userId, job.idempotencyKey);
      if (existing !== null) return { job: this.#sameRequest(existing, job), created: false };
    }
    try {
      const created = await this.#db.job.create({
        data: {
          id: newId(),
          userId: job.userId,
          type: job.type,
          status: "queued",
          priority: job.priority,
          provider: job.provider ?? null,
          model: job.model ?? null,
          input: job.input as Prisma.InputJsonValue,
          ...(job.metadata === undefined ? {} : { metadata: job.metadata as Prisma.InputJsonValue }),
          idempotencyKey: job.idempotencyKey ?? null,
          requestHash: job.requestHash ?? null,
          webhookUrl: job.webhookUrl ?? null,
        },
      });
      return { job: created, created: true };
    } catch (error) {
      // Two requests with one key raced past the lookup; the loser answers like a repeat.
      if (job.idempotencyKey !== undefined && isUniqueViolation(error)) {
        const existing = await this.#findByIdempotencyKey(job.userId, job.idempotencyKey);
        if (existing !== null) return { job: this.#sameRequest(existing, job), created: false };
      }
      throw error;
    }
  }

  /**
   * The job an earlier request made under the same idempotency key, or null when
   * the key is new: lets the API answer a replay before any check that could
   * refuse it (the quota). A different request under the key throws
   * {@link IdempotencyConflictError}.
   */
  async findRepeat(
    job: Pick<NewJob, "userId" | "idempotencyKey" | "requestHash">,
  ): Promise<JobRecord | null> {
    if (job.idempotencyKey === undefined) return null;
    const existing = await this.#findByIdempotencyKey(job.userId, job.idempotencyKey);
    return existing === null ? null : this.#sameRequest(existing, job);
  }

  #findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<JobRecord | null> {
    return this.#db.job.findUnique({ where: { userId_idempotencyKey: { userId, idempotencyKey } } });
  }

  #sameRequest(existing: JobRecord, job: Pick<NewJob, "idempotencyKey" | "requestHash">): JobRecord {
    if (existing.requestHash !== (job.requestHash ?? null)) {
      throw new IdempotencyConflictError(job.idempotencyKey ?? "", existing.id);
    }
    return existing;
  }

  /** A job by id, for anyone (workers); null when absent. */
  find(jobId: string): Promise<JobRecord | null> {
    return this.#db.job.findUnique({ where: { id: jobId } });
  }

  /** A user's job; another user's job is reported as not found. */
  async findForUser(userId: string, jobId: string): Promise<JobRecord> {
    const job = await this.#db.job.findUnique({ where: { id: jobId } });
    if (job === null || job.userId !== userId) throw new NotFoundError("job", jobId);
    return job;
  }

  /** A user's jobs, newest first (ids are UUIDv7, so id order is creation order). */
  async list(userId: string, query: JobListQuery): Promise<JobPage> {
    const jobs = await this.#db.job.findMany({
      where: {
        userId,
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.type === undefined ? {} : { type: query.type }),
        ...(query.cursor === undefined ? {} : { id: { lt: query.cursor } }),
      },
      orderBy: { id: "desc" },
      take: query.limit + 1,
    });
    const hasMore = jobs.length > query.limit;
    const page = hasMore ? jobs.slice(0, query.limit) : jobs;
    return { jobs: page, nextCursor: hasMore ? (page.at(-1)?.id ?? null) : null };
  }

  /**
   * Cancels a user's job: a queued job is canceled now; an active one is flagged
   * and canceled by its worker at the next safe point. Canceling a canceled job is
   * a no-op; a completed or failed job cannot be canceled (409).
   */
  async requestCancel(userId: string, jobId: string): Promise<{ job: JobRecord; wasActive: boolean }> {
    const job = await this.findForUser(userId, jobId);
    const now = new Date();
    const canceledQueued = await this.#db.$transaction(async (transaction) => {
      const rows = await transaction.job.updateManyAndReturn({
        where: { id: jobId, status: "queued" },
        data: {
          status: "canceled",
          cancelRequested: true,
          finishedAt: now,
          errorCode: null,
          errorMessage: null,
        },
        select: FINISHED_JOB_SELECT,
      });
      return this.#finishedInTransaction(transaction, rows);
    }, COMPLETE_TRANSACTION_OPTIONS);
    this.#finishedAfterCommit(canceledQueued);
    if (canceledQueued.length === 1) return { job: await this.findForUser(userId, jobId), wasActive: false };
    const flaggedActive = await this.#db.job.updateMany({
      where: { id: jobId, status: "active" },
      data: { cancelRequested: true },
    });
    if (flaggedActive.count === 1) return { job: await this.findForUser(userId, jobId), wasActive: true };
    const current = (await this.#db.job.findUnique({ where: { id: jobId } })) ?? job;
    if (current.status === "canceled") return { job: current, wasActive: false };
    throw new GenqError(
      "conflict",
      `job ${jobId} is already ${current.status} and can no longer be canceled`,
      {
        details: { jobId, status: current.status },
      },
    );
  }

  /**
   * Stops everything a disabled user has pending: running batches are flagged
   * canceling (the dispatcher stops releasing their items), every queued job (single
   * jobs and batch items, held back or in BullMQ) is canceled in transactions of
   * {@link USER_CANCEL_CHUNK} that run the finished-job hooks (holds released, batch
   * counters, events), and running jobs are flagged for their workers to cancel at
   * the next safe point. Returns the canceled jobs that had reached BullMQ (for the
   * caller to remove) and the running ones (for the caller to abort).
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
        return this.#finishedInTransaction(transaction, rows);
      }, COMPLETE_TRANSACTION_OPTIONS);
      this.#finishedAfterCommit(finished);
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

  /**
   * Claims a job for an attempt: queued/active → active. Returns null when the job
   * is gone, finished, canceled, or its owner is disabled, so the caller does nothing.
   */
  async claim(jobId: string): Promise<JobRecord | null> {
    const [claimed] = await this.#db.job.updateManyAndReturn({
      where: {
        id: jobId,
        status: { in: ACTIVE_OR_QUEUED },
        cancelRequested: false,
        user: { disabledAt: null },
      },
      data: { status: "active", attempts: { increment: 1 }, startedAt: new Date() },
    });
    return claimed ?? null;
  }

  /**
   * Claims a job as {@link JobRepository.claim} does, within the owner's limits: a job
   * of a disabled user is canceled instead (it must not run, and must not wait in the
   * queue forever); a job whose owner already runs `tenantCap(plan)` jobs is left
   * queued (`tenant_busy`). The count and the claim run under a per-user advisory lock,
   * so concurrent claims of one user never overshoot the cap.
   */
  async claimFor(jobId: string, limits: ClaimLimits = {}): Promise<ClaimOutcome> {
    const { tenantCap } = limits;
    const outcome =
      tenantCap === undefined ? await this.#claimUncapped(jobId) : await this.#claimCapped(jobId, tenantCap);
    if (outcome.outcome === "user_disabled") {
      await this.#finishUnfinished(
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

  /** {@link JobRepository.claimFor} with a cap: owner, lock, count and claim in one transaction. */
  #claimCapped(jobId: string, tenantCap: (plan: Plan) => number): Promise<ClaimOutcome> {
    return this.#db.$transaction(async (transaction): Promise<ClaimOutcome> => {
      // The owner's lock is taken here, so the count below (a later statement, a later
      // snapshot) sees every claim of this owner committed before it.
      const [owner] = await transaction.$queryRaw<Array<{ userId: string; plan: Plan; disabled: boolean }>>`
        SELECT u.id::text AS "userId", u.plan::text AS plan, u.disabled_at IS NOT NULL AS disabled,
               pg_advisory_xact_lock(${CLAIM_LOCK_CLASS}::int, hashtext(u.id::text)) IS NULL AS locked
        FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.id = ${jobId}::uuid`;
      if (owner === undefined) return { outcome: "finished" };
      if (owner.disabled) return { outcome: "user_disabled" };
      const cap = tenantCap(owner.plan);
      const [counted] = await transaction.$queryRaw<Array<{ running: number }>>`
        SELECT count(*)::int AS running FROM jobs
        WHERE user_id = ${owner.userId}::uuid AND status = 'active' AND id <> ${jobId}::uuid`;
      const running = counted?.running ?? 0;
      if (running >= cap) return { outcome: "tenant_busy", userId: owner.userId, running, cap };
      const [claimed] = await transaction.job.updateManyAndReturn({
        where: { id: jobId, status: { in: ACTIVE_OR_QUEUED }, cancelRequested: false },
        data: { status: "active", attempts: { increment: 1 }, startedAt: new Date() },
      });
      return claimed === undefined ? { outcome: "finished" } : { outcome: "claimed", job: claimed };
    });
  }

  /** {@link JobRepository.claimFor} without a cap: one statement, and a look at the owner only when it fails. */
  async #claimUncapped(jobId: string): Promise<ClaimOutcome> {
    const job = await this.claim(jobId);
    if (job !== null) return { outcome: "claimed", job };
    const row = await this.#db.job.findUnique({
      where: { id: jobId },
      select: { status: true, user: { select: { disabledAt: true } } },
    });
    const disabled = row !== null && row.user.disabledAt !== null && ACTIVE_OR_QUEUED.includes(row.status);
    return { outcome: disabled ? "user_disabled" : "finished" };
  }

  /**
   * Completes an active job and records its usage and provider calls in one
   * transaction. Returns false (and leaves the job as it is) when the job is no
   * longer active, a cancel was requested meanwhile, or another delivery claimed it
   * since (its `attempts` is no longer `completion.attempt`); the usage row is unique per
   * job, so it is written once. The calls are recorded either way: they happened.
   */
  async complete(completion: JobCompletion): Promise<boolean> {
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
        await completion.onCompleted?.(transaction, { userId: updated.userId });
      }
      await recordCalls(
        transaction,
        completion.jobId,
        completion.calls,
        completion.attempt,
        updated !== undefined,
      );
      return this.#finishedInTransaction(transaction, updated === undefined ? [] : [updated]);
    }, COMPLETE_TRANSACTION_OPTIONS);
    this.#finishedAfterCommit(finished);
    return finished.length === 1;
  }

  /**
   * Records a failed attempt that will be retried: the job waits in `queued` again.
   * Returns false when a cancel was requested meanwhile (the job is then canceled
   * instead) or, given `attempt`, when another delivery claimed the job since; the
   * caller must not retry it either way.
   *
   * `calls` are the provider calls of the failed attempt; they are recorded whatever
   * the outcome, once per (attempt, seq). `attempt` is the claimed row's `attempts`;
   * without it the row's current count is used, which is the same unless another
   * delivery claimed the job meanwhile.
   */
  async recordRetry(
    jobId: string,
    failure: JobFailure,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    const retried = await this.#db.$transaction(async (transaction) => {
      const updated = await transaction.job.updateMany({
        where: { id: jobId, status: "active", cancelRequested: false, ...fence(attempt) },
        data: {
          status: "queued",
          errorCode: failure.code,
          errorMessage: failure.message,
          queuedAt: new Date(),
        },
      });
      await recordCalls(transaction, jobId, calls, attempt, updated.count === 1);
      return updated.count === 1;
    });
    if (retried) return true;
    await this.markCanceledIfRequested(jobId);
    return false;
  }

  /**
   * Puts an active job back to `queued` without an error: every provider candidate
   * was rate limited or resting, so the job waits in BullMQ's delayed set. The run
   * is counted in `postponements` (its `attempts` stays the claim count, so the calls
   * of this run stay filed under it; a job's real attempts are `attempts −
   * postponements`); `postponedSince` keeps the first postponement's time. The retry
   * budget is BullMQ's, which a postponement does not spend. False when the job is no
   * longer active here (canceled meanwhile, or, given `attempt`, claimed by another delivery).
   */
  async postpone(
    jobId: string,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
    postponedSince: Date = new Date(),
  ): Promise<boolean> {
    return this.#db.$transaction(async (transaction) => {
      const updated = await transaction.job.updateMany({
        where: { id: jobId, status: "active", cancelRequested: false, ...fence(attempt) },
        data: {
          status: "queued",
          queuedAt: new Date(),
          postponements: { increment: 1 },
          postponedSince,
        },
      });
      await recordCalls(transaction, jobId, calls, attempt, updated.count === 1);
      return updated.count === 1;
    });
  }

  /**
   * Cancels an unfinished job whose cancel was requested; true when it did.
   * `calls` and `attempt` (of an attempt the cancel interrupted) are recorded as by
   * {@link JobRepository.recordRetry}.
   */
  async markCanceledIfRequested(
    jobId: string,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    return this.#finishUnfinished(
      { id: jobId, status: { in: ACTIVE_OR_QUEUED }, cancelRequested: true },
      { status: "canceled", finishedAt: new Date() },
      calls,
      attempt,
    );
  }

  /**
   * Fails a job that is not finished yet. Returns false when it already was or,
   * given `attempt`, when another delivery claimed it since (a stale delivery's
   * failure must not end a run that is still going). `calls` and `attempt` are
   * recorded as by {@link JobRepository.recordRetry}.
   */
  async fail(
    jobId: string,
    failure: JobFailure,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean> {
    return this.#finishUnfinished(
      { id: jobId, status: { in: ACTIVE_OR_QUEUED }, ...fence(attempt) },
      { status: "failed", errorCode: failure.code, errorMessage: failure.message, finishedAt: new Date() },
      calls,
      attempt,
    );
  }

  /**
   * Moves one unfinished job matching `where` to the terminal state `data` sets,
   * records the attempt's calls and runs the finished-job hooks, in one
   * transaction; true when the job was moved.
   */
  async #finishUnfinished(
    where: Prisma.JobWhereInput & { id: string },
    data: Prisma.JobUpdateManyMutationInput,
    calls: readonly ProviderCallRecord[] | undefined,
    attempt: number | undefined,
  ): Promise<boolean> {
    const finished = await this.#db.$transaction(async (transaction) => {
      const rows = await transaction.job.updateManyAndReturn({ where, data, select: FINISHED_JOB_SELECT });
      await recordCalls(transaction, where.id, calls, attempt, rows.length > 0);
      return this.#finishedInTransaction(transaction, rows);
    }, COMPLETE_TRANSACTION_OPTIONS);
    this.#finishedAfterCommit(finished);
    return finished.length === 1;
  }

  /**
   * Jobs that should be in the queue: queued before `queuedBefore`, or active
   * since before `activeBefore` (their worker may be gone with Redis' data).
   */
  findUnfinished(options: {
    queuedBefore: Date;
    activeBefore: Date;
    limit: number;
    afterId?: string;
  }): Promise<Array<Pick<JobRecord, "id" | "type" | "priority" | "status">>> {
    return this.#db.job.findMany({
      where: {
        ...(options.afterId === undefined ? {} : { id: { gt: options.afterId } }),
        OR: [
          // A batch item the fair dispatcher still holds back (dispatchedAt null) is not due.
          {
            status: "queued",
            queuedAt: { lt: options.queuedBefore },
            dispatchedAt: { lt: options.queuedBefore },
          },
          { status: "active", startedAt: { lt: options.activeBefore } },
        ],
      },
      select: { id: true, type: true, priority: true, status: true },
      orderBy: { id: "asc" },
      take: options.limit,
    });
  }

  /** A job's provider calls, in the order they were made: by attempt, then by `seq`. */
  async listCalls(jobId: string): Promise<JobProviderCall[]> {
    const rows = await this.#db.providerCall.findMany({
      where: { jobId },
      orderBy: [{ jobAttempt: "asc" }, { seq: "asc" }],
    });
    return rows.map(toJobProviderCall);
  }

  /** How many usage rows a job has (1 once it completed; never more). */
  countUsageRecords(jobId: string): Promise<number> {
    return this.#db.usageRecord.count({ where: { jobId } });
  }
}

/** The condition that a job is still on the claim `attempt` (none without one). */
function fence(attempt: number | undefined): { attempts?: number } {
  return attempt === undefined ? {} : { attempts: attempt };
}

/**
 * Writes an attempt's provider calls. A call already stored under the same
 * (job, attempt, seq) is kept as it is, so a re-delivered attempt adds nothing.
 * Calls of a job that no longer exists are dropped: there is nothing to attach them to.
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
      // Durations come from performance.now() differences; the column holds whole milliseconds.
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

function toJobProviderCall(row: ProviderCall): JobProviderCall {
  return {
    jobAttempt: row.jobAttempt,
    seq: row.seq,
    provider: row.provider,
    model: row.model,
    ...(row.keyId === null ? {} : { keyId: row.keyId }),
    startedAt: row.startedAt,
    latencyMs: row.latencyMs,
    // Only recordCalls writes this column, from a ProviderCallOutcome.
    outcome: row.outcome as ProviderCallOutcome,
    ...(row.errorCode === null ? {} : { errorCode: row.errorCode }),
    ...(row.errorMessage === null ? {} : { errorMessage: row.errorMessage }),
    ...(row.inputTokens === null ? {} : { inputTokens: row.inputTokens }),
    ...(row.outputTokens === null ? {} : { outputTokens: row.outputTokens }),
  };
}
