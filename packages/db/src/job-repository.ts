import { createHash } from "node:crypto";
import {
  GenqError,
  IdempotencyConflictError,
  type JobStatus,
  type JobType,
  NotFoundError,
  newId,
  type TokenUsage,
} from "@genq/core";
import type { Database } from "./client.ts";
import type { Job, Prisma } from "./generated/prisma/client.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

/** A job row. */
export type JobRecord = Job;

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

/** What a finished attempt produced. */
export interface JobCompletion {
  jobId: string;
  attempt: number;
  result: unknown;
  provider: string;
  model: string;
  usage: TokenUsage;
  costMicroUsd: number;
}

/** The hash that tells a repeated request from a different one under one idempotency key. */
export function requestFingerprint(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(",")}}`;
  }
  return JSON.stringify(value);
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

/**
 * Jobs in Postgres, the source of truth. Every state change is a conditional
 * update on the current status, so concurrent workers, retries and cancels can
 * race without a job leaving a terminal status or being settled twice.
 */
export class JobRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
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

  #findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<JobRecord | null> {
    return this.#db.job.findUnique({ where: { userId_idempotencyKey: { userId, idempotencyKey } } });
  }

  #sameRequest(existing: JobRecord, job: NewJob): JobRecord {
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
    const canceledQueued = await this.#db.job.updateMany({
      where: { id: jobId, status: "queued" },
      data: {
        status: "canceled",
        cancelRequested: true,
        finishedAt: now,
        errorCode: null,
        errorMessage: null,
      },
    });
    if (canceledQueued.count === 1) return { job: await this.findForUser(userId, jobId), wasActive: false };
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
   * Claims a job for an attempt: queued/active → active. Returns null when the job
   * is gone, finished, or canceled, so the caller does nothing.
   */
  async claim(jobId: string): Promise<JobRecord | null> {
    const claimed = await this.#db.job.updateMany({
      where: { id: jobId, status: { in: ACTIVE_OR_QUEUED }, cancelRequested: false },
      data: { status: "active", attempts: { increment: 1 }, startedAt: new Date() },
    });
    if (claimed.count === 0) return null;
    return this.#db.job.findUnique({ where: { id: jobId } });
  }

  /**
   * Completes an active job and records its usage in one transaction. Returns
   * false (and changes nothing) when the job is no longer active or a cancel was
   * requested meanwhile; the usage row is unique per job, so it is written once.
   */
  async complete(completion: JobCompletion): Promise<boolean> {
    return this.#db.$transaction(async (transaction) => {
      const updated = await transaction.job.updateMany({
        where: { id: completion.jobId, status: "active", cancelRequested: false },
        data: {
          status: "completed",
          result: completion.result as Prisma.InputJsonValue,
          provider: completion.provider,
          model: completion.model,
          inputTokens: completion.usage.inputTokens,
          outputTokens: completion.usage.outputTokens,
          costMicroUsd: BigInt(completion.costMicroUsd),
          errorCode: null,
          errorMessage: null,
          progress: 100,
          finishedAt: new Date(),
        },
      });
      if (updated.count === 0) return false;
      const job = await transaction.job.findUniqueOrThrow({
        where: { id: completion.jobId },
        select: { userId: true },
      });
      await transaction.usageRecord.create({
        data: {
          id: newId(),
          userId: job.userId,
          jobId: completion.jobId,
          attempt: completion.attempt,
          provider: completion.provider,
          model: completion.model,
          inputTokens: completion.usage.inputTokens,
          outputTokens: completion.usage.outputTokens,
          costMicroUsd: BigInt(completion.costMicroUsd),
        },
      });
      return true;
    });
  }

  /**
   * Records a failed attempt that will be retried: the job waits in `queued` again.
   * Returns false when a cancel was requested meanwhile; the job is then canceled
   * instead, and the caller must not retry it.
   */
  async recordRetry(jobId: string, error: { code: string; message: string }): Promise<boolean> {
    const updated = await this.#db.job.updateMany({
      where: { id: jobId, status: "active", cancelRequested: false },
      data: { status: "queued", errorCode: error.code, errorMessage: error.message, queuedAt: new Date() },
    });
    if (updated.count === 1) return true;
    await this.markCanceledIfRequested(jobId);
    return false;
  }

  /** Cancels an unfinished job whose cancel was requested; true when it did. */
  async markCanceledIfRequested(jobId: string): Promise<boolean> {
    const updated = await this.#db.job.updateMany({
      where: { id: jobId, status: { in: ACTIVE_OR_QUEUED }, cancelRequested: true },
      data: { status: "canceled", finishedAt: new Date() },
    });
    return updated.count === 1;
  }

  /** Fails a job that is not finished yet. Returns false when it already was. */
  async fail(jobId: string, error: { code: string; message: string }): Promise<boolean> {
    const updated = await this.#db.job.updateMany({
      where: { id: jobId, status: { in: ACTIVE_OR_QUEUED } },
      data: { status: "failed", errorCode: error.code, errorMessage: error.message, finishedAt: new Date() },
    });
    return updated.count === 1;
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
          { status: "queued", queuedAt: { lt: options.queuedBefore } },
          { status: "active", startedAt: { lt: options.activeBefore } },
        ],
      },
      select: { id: true, type: true, priority: true, status: true },
      orderBy: { id: "asc" },
      take: options.limit,
    });
  }

  /** How many usage rows a job has (1 once it completed; never more). */
  countUsageRecords(jobId: string): Promise<number> {
    return this.#db.usageRecord.count({ where: { jobId } });
  }
}
