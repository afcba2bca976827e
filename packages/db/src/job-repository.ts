import {
  fingerprint,
  GenqError,
  IdempotencyConflictError,
  type JobStatus,
  type JobType,
  NotFoundError,
  newId,
} from "@genq/core";
import type { Database } from "./client.ts";
import type { Prisma, ProviderCall } from "./generated/prisma/client.ts";
import type { JobProviderCall, JobRecord, ProviderCallOutcome } from "./lifecycle/types.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

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

export type TransactionClient = Prisma.TransactionClient;

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
          // An economy item submitted to a provider's batch API runs there, not in BullMQ.
          { status: "active", startedAt: { lt: options.activeBefore }, providerBatchItems: { none: {} } },
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
