import {
  type BatchStatus,
  GenqError,
  IdempotencyConflictError,
  type InvalidBatchItem,
  type JobStatus,
  type JobType,
  NotFoundError,
  newId,
} from "@genq/core";
import type { BatchItemSpool } from "./batch-item-spool.ts";
import type { Database } from "./client.ts";
import type { Batch, Job, Plan, Prisma } from "./generated/prisma/client.ts";
import {
  FINISHED_JOB_SELECT,
  type FinishedJob,
  type JobFinishedHooks,
  toFinishedJob,
} from "./job-finished.ts";
import { createJobFinishedHooks } from "./job-finished-hooks.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

/** A batch row. */
export type BatchRecord = Batch;

/** What the API stores for a new batch (its items come separately, spooled). */
export interface NewBatch {
  userId: string;
  type: JobType;
  priority: number;
  provider?: string | undefined;
  model?: string | undefined;
  metadata?: unknown;
  webhookUrl?: string | undefined;
  idempotencyKey?: string | undefined;
  /** The request's fingerprint (options and every item), compared when the idempotency key repeats. */
  requestHash?: string | undefined;
  /**
   * `economy`: the items run on the providers' batch APIs (the economy scheduler
   * submits them; the fair dispatcher leaves them alone). @defaultValue "online"
   */
  tier?: BatchTier | undefined;
}

/** How a batch's items run: through the queues (`online`) or the providers' batch APIs (`economy`). */
export type BatchTier = "online" | "economy";

/** What {@link BatchRepository.create} did. */
export interface BatchCreation {
  batch: BatchRecord;
  /** False when an earlier request with the same idempotency key made the batch. */
  created: boolean;
  /** The first {@link MAX_LISTED_INVALID_ITEMS} rejected items, by index. */
  invalidItems: InvalidBatchItem[];
  /** How many items were rejected (exact). */
  invalidCount: number;
}

/** A page of batches, newest first. */
export interface BatchPage {
  batches: BatchRecord[];
  nextCursor: string | null;
}

/** One item of a batch with what it produced, for the results pages. */
export type BatchResultRow = Pick<
  Job,
  | "id"
  | "itemIndex"
  | "type"
  | "status"
  | "result"
  | "errorCode"
  | "errorMessage"
  | "inputTokens"
  | "outputTokens"
  | "costMicroUsd"
>;

/** A running batch as the fair dispatcher sees it. */
export interface DispatchCandidate {
  batchId: string;
  userId: string;
  plan: Plan;
  createdAt: Date;
  cancelRequested: boolean;
  /** Items handed to BullMQ and not finished yet. */
  outstanding: number;
  /** Items still held back. */
  undispatched: number;
  dispatchCursor: number;
}

/** An item the dispatcher released, to be put on its queue. */
export interface ClaimedBatchItem {
  id: string;
  type: JobType;
  priority: number;
}

/**
 * Rows and characters per multi-row INSERT when a batch is stored. The byte bound
 * matters beyond the statement's size: Prisma's debug module keeps the arguments
 * of its last 100 calls (queries with their parameters) even with logging off, so
 * it caps what a finished upload leaves on the heap (about 13 MB).
 */
const INSERT_CHUNK = { maxRows: 2_000, maxBytes: 128 * 1024 } as const;
/** Rows per cancel transaction, so a huge batch never holds one long lock on everything. */
const CANCEL_CHUNK = 5_000;
/**
 * Storing 100,000 items from the spool takes seconds (Prisma's 5 s default would
 * give up); the client's pace never counts, its body was read before.
 */
const CREATE_TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 120_000 } as const;
const FINISH_TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 30_000 } as const;

/** A batch that already finished cannot be canceled. */
export class BatchNotCancelableError extends GenqError {
  override readonly name = "BatchNotCancelableError";
  constructor(
    readonly batchId: string,
    readonly status: BatchStatus,
  ) {
    super("conflict", `batch ${batchId} is already ${status} and can no longer be canceled`, {
      details: { batchId, status },
    });
  }
}

/** No item of a batch was valid: nothing is stored. */
export class EmptyBatchError extends GenqError {
  override readonly name = "EmptyBatchError";
  constructor(
    readonly invalidItems: InvalidBatchItem[],
    readonly invalidCount: number,
  ) {
    super("invalid_request", `no item of the batch is valid (${invalidCount} invalid)`, {
      details: { invalidCount, invalidItems },
    });
  }
}

/**
 * Batches and their items in Postgres. Items are rows of `jobs` (with `batch_id`
 * and `item_index`), stored held back (`dispatched_at` null) and released to BullMQ
 * by the fair dispatcher a few at a time per tenant.
 */
export class BatchRepository {
  readonly #db: Database;
  readonly #hooks: JobFinishedHooks;

  /** `hooks`: those of the process's JobRepository, so a batch cancel counts and notifies alike. */
  constructor(options: { db: Database; hooks?: JobFinishedHooks }) {
    this.#db = options.db;
    this.#hooks = options.hooks ?? createJobFinishedHooks();
  }

  /**
   * Stores a batch and its valid items, read from a finished {@link BatchItemSpool},
   * in one short transaction: the request was read and checked before it starts,
   * so it lasts as long as Postgres takes to insert the rows (multi-row statements
   * of {@link INSERT_CHUNK}), never as long as a client takes to send them. When
   * the commit returns, every valid item is stored. No valid item:
   * {@link EmptyBatchError}, nothing stored. A repeated idempotency key answers
   * the earlier batch, or {@link IdempotencyConflictError} for another request.
   */
  async create(batch: NewBatch, items: BatchItemSpool): Promise<BatchCreation> {
    if (batch.idempotencyKey !== undefined) {
      const existing = await this.findByIdempotencyKey(batch.userId, batch.idempotencyKey);
      if (existing !== null) return this.repeat(existing, batch, items);
    }
    if (items.validCount === 0) throw new EmptyBatchError(items.invalidItems, items.invalidCount);
    const { invalidItems, invalidCount } = items;
    await items.finish();
    try {
      const stored = await this.#db.$transaction(async (transaction) => {
        const id = newId();
        await transaction.batch.create({
          data: {
            id,
            userId: batch.userId,
            type: batch.type,
            priority: batch.priority,
            provider: batch.provider ?? null,
            model: batch.model ?? null,
            ...(batch.metadata === undefined ? {} : { metadata: batch.metadata as Prisma.InputJsonValue }),
            webhookUrl: batch.webhookUrl ?? null,
            total: items.validCount,
            invalidItems: invalidItems as unknown as Prisma.InputJsonValue,
            idempotencyKey: batch.idempotencyKey ?? null,
            requestHash: batch.idempotencyKey === undefined ? null : (batch.requestHash ?? null),
            tier: batch.tier ?? "online",
          },
        });
        for await (const rows of items.chunks(INSERT_CHUNK)) await insertItems(transaction, id, batch, rows);
        return transaction.batch.findUniqueOrThrow({ where: { id } });
      }, CREATE_TRANSACTION_OPTIONS);
      return { batch: stored, created: true, invalidItems, invalidCount };
    } catch (error) {
      // Two requests with one key raced past the lookup; the loser answers like a repeat.
      if (batch.idempotencyKey !== undefined && isUniqueViolation(error)) {
        const existing = await this.findByIdempotencyKey(batch.userId, batch.idempotencyKey);
        if (existing !== null) return this.repeat(existing, batch, items);
      }
      throw error;
    }
  }

  /**
   * The answer to a repeated idempotency key: the earlier batch when the request
   * is the same, else {@link IdempotencyConflictError}. Nothing is stored.
   */
  repeat(
    existing: BatchRecord,
    batch: Pick<NewBatch, "idempotencyKey" | "requestHash">,
    items: Pick<BatchItemSpool, "invalidCount">,
  ): BatchCreation {
    if (existing.requestHash !== (batch.requestHash ?? null)) {
      throw new IdempotencyConflictError(batch.idempotencyKey ?? "", existing.id);
    }
    return {
      batch: existing,
      created: false,
      invalidItems: (existing.invalidItems as InvalidBatchItem[] | null) ?? [],
      invalidCount: items.invalidCount,
    };
  }

  /** A user's batch under an idempotency key, or null. */
  findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<BatchRecord | null> {
    return this.#db.batch.findUnique({ where: { userId_idempotencyKey: { userId, idempotencyKey } } });
  }

  /** A user's batch; another user's batch is reported as not found. */
  async findForUser(userId: string, batchId: string): Promise<BatchRecord> {
    const batch = await this.#db.batch.findUnique({ where: { id: batchId } });
    if (batch === null || batch.userId !== userId) throw new NotFoundError("batch", batchId);
    return batch;
  }

  /** A user's batches, newest first (ids are UUIDv7). */
  async list(
    userId: string,
    query: { status?: BatchStatus | undefined; cursor?: string | undefined; limit: number },
  ): Promise<BatchPage> {
    const batches = await this.#db.batch.findMany({
      where: {
        userId,
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.cursor === undefined ? {} : { id: { lt: query.cursor } }),
      },
      orderBy: { id: "desc" },
      take: query.limit + 1,
    });
    const hasMore = batches.length > query.limit;
    const page = hasMore ? batches.slice(0, query.limit) : batches;
    return { batches: page, nextCursor: hasMore ? (page.at(-1)?.id ?? null) : null };
  }

  /** How many items of a batch are running now (an index lookup on batch and status). */
  countActive(batchId: string): Promise<number> {
    return this.#db.job.count({ where: { batchId, status: "active" } });
  }

  /**
   * Items of a batch in item order, after `afterIndex` (exclusive), optionally of
   * one status: a results page, or one chunk of the JSONL download.
   */
  results(
    batchId: string,
    query: { afterIndex?: number | undefined; limit: number; status?: JobStatus | undefined },
  ): Promise<BatchResultRow[]> {
    return this.#db.job.findMany({
      where: {
        batchId,
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.afterIndex === undefined ? {} : { itemIndex: { gt: query.afterIndex } }),
      },
      orderBy: { itemIndex: "asc" },
      take: query.limit,
      select: {
        id: true,
        itemIndex: true,
        type: true,
        status: true,
        result: true,
        errorCode: true,
        errorMessage: true,
        inputTokens: true,
        outputTokens: true,
        costMicroUsd: true,
      },
    });
  }

  /**
   * Cancels a user's batch: every item still queued (held back or waiting in
   * BullMQ) is canceled now, in transactions of {@link CANCEL_CHUNK} items that each
   * run the finished-job hooks (counters, events); items already running finish.
   * The batch ends `canceled` when its last item finishes (see batch-events.ts).
   * Canceling a canceled batch is a no-op; a completed one answers 409. Returns the
   * canceled items that had been handed to BullMQ, for the caller to remove.
   */
  async requestCancel(
    userId: string,
    batchId: string,
  ): Promise<{ batch: BatchRecord; dispatched: Array<{ id: string; type: JobType }> }> {
    const batch = await this.findForUser(userId, batchId);
    if (batch.status === "completed") throw new BatchNotCancelableError(batchId, batch.status);
    if (batch.status === "canceled") return { batch, dispatched: [] };
    // The flag first, so the dispatcher stops releasing items while they are canceled.
    await this.#db.batch.updateMany({
      where: { id: batchId, status: "running" },
      data: { cancelRequested: true },
    });
    const dispatched: Array<{ id: string; type: JobType }> = [];
    const now = new Date();
    const last = await this.#db.job.aggregate({ where: { batchId }, _max: { itemIndex: true } });
    const end = (last._max.itemIndex ?? -1) + 1;
    for (let from = 0; from < end; from += CANCEL_CHUNK) {
      const finished = await this.#db.$transaction(async (transaction) => {
        const rows = await transaction.job.updateManyAndReturn({
          where: { batchId, status: "queued", itemIndex: { gte: from, lt: from + CANCEL_CHUNK } },
          data: {
            status: "canceled",
            cancelRequested: true,
            finishedAt: now,
            errorCode: null,
            errorMessage: null,
          },
          select: FINISHED_JOB_SELECT,
        });
        const jobs = rows.map(toFinishedJob);
        const events = jobs.length > 0 ? ((await this.#hooks.inTransaction?.(transaction, jobs)) ?? []) : [];
        return { jobs, events };
      }, FINISH_TRANSACTION_OPTIONS);
      for (const job of finished.jobs)
        if (job.dispatchedAt !== null) dispatched.push({ id: job.id, type: job.type });
      this.#afterCommit(finished.jobs, finished.events);
    }
    return { batch: await this.findForUser(userId, batchId), dispatched };
  }

  #afterCommit(
    jobs: readonly FinishedJob[],
    events: Parameters<NonNullable<JobFinishedHooks["afterCommit"]>>[1],
  ) {
    if (jobs.length === 0 || this.#hooks.afterCommit === undefined) return;
    try {
      this.#hooks.afterCommit(jobs, events);
    } catch {
      // Notifications are best effort; the committed rows are the record.
    }
  }

  /**
   * Every running online batch (economy batches go to the economy scheduler) with its tenant's plan and its outstanding and held-back
   * item counts, oldest first, from the counters (no scan of the items).
   */
  async dispatchCandidates(): Promise<DispatchCandidate[]> {
    const rows = await this.#db.$queryRaw<
      Array<{
        id: string;
        user_id: string;
        plan: Plan;
        created_at: Date;
        cancel_requested: boolean;
        outstanding: number;
        undispatched: number;
        dispatch_cursor: number;
      }>
    >`
      SELECT b.id, b.user_id, u.plan, b.created_at, b.cancel_requested, b.dispatch_cursor,
             (b.dispatched_count - b.completed_count - b.failed_count - b.canceled_count)::int AS outstanding,
             (b.total - b.dispatched_count)::int AS undispatched
      FROM batches b JOIN users u ON u.id = b.user_id
      WHERE b.status = 'running' AND b.tier = 'online'
      ORDER BY b.created_at, b.id`;
    return rows.map((row) => ({
      batchId: row.id,
      userId: row.user_id,
      plan: row.plan,
      createdAt: row.created_at,
      cancelRequested: row.cancel_requested,
      outstanding: row.outstanding,
      undispatched: row.undispatched,
      dispatchCursor: row.dispatch_cursor,
    }));
  }

  /**
   * Releases up to `limit` held-back items of a batch, lowest item index first, in
   * one transaction that also counts them on the batch. Items locked by a
   * concurrent cancel are skipped. The caller enqueues the returned items after
   * this commits; if it dies in between, the reconciler enqueues them.
   */
  async claimItems(batchId: string, limit: number, fromIndex = 0): Promise<ClaimedBatchItem[]> {
    if (limit <= 0) return [];
    return this.#db.$transaction(async (transaction) => {
      const claimed = await transaction.$queryRaw<
        Array<{ id: string; type: JobType; priority: number; item_index: number }>
      >`
        WITH picked AS (
          SELECT j.id FROM jobs j
          JOIN batches b ON b.id = j.batch_id AND b.status = 'running' AND NOT b.cancel_requested
          WHERE j.batch_id = ${batchId}::uuid AND j.item_index >= ${fromIndex}
            AND j.status = 'queued' AND j.dispatched_at IS NULL
          ORDER BY j.item_index
          LIMIT ${limit}
          FOR UPDATE OF j SKIP LOCKED
        )
        UPDATE jobs SET dispatched_at = now() FROM picked WHERE jobs.id = picked.id
        RETURNING jobs.id, jobs.type, jobs.priority, jobs.item_index`;
      if (claimed.length === 0) return [];
      const cursor = Math.max(...claimed.map((item) => item.item_index)) + 1;
      await transaction.$executeRaw`
        UPDATE batches
        SET dispatched_count = dispatched_count + ${claimed.length},
            dispatch_cursor = GREATEST(dispatch_cursor, ${cursor}),
            started_at = COALESCE(started_at, now()),
            updated_at = now()
        WHERE id = ${batchId}::uuid`;
      return claimed
        .sort((a, b) => a.item_index - b.item_index)
        .map((item) => ({ id: item.id, type: item.type, priority: item.priority }));
    }, FINISH_TRANSACTION_OPTIONS);
  }
}

async function insertItems(
  transaction: Prisma.TransactionClient,
  batchId: string,
  batch: NewBatch,
  rows: string,
): Promise<void> {
  // One statement per chunk: the rows travel as one JSON parameter, expanded by Postgres.
  await transaction.$executeRaw`
    INSERT INTO jobs (id, user_id, type, status, priority, provider, model, input, metadata, batch_id,
                      item_index, dispatched_at, updated_at)
    SELECT item.id, ${batch.userId}::uuid, ${batch.type}::"JobType", 'queued'::"JobStatus", ${batch.priority}::int,
           ${batch.provider ?? null}::text, COALESCE(item.model, ${batch.model ?? null}::text), item.input,
           item.metadata, ${batchId}::uuid, item.item_index, NULL, now()
    FROM jsonb_to_recordset(${rows}::jsonb)
      AS item(id uuid, item_index int, input jsonb, model text, metadata jsonb)`;
}
