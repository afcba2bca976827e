import { isId, NotFoundError } from "@genq/core";
import type { Database } from "./client.ts";
import type { Job, OpenAIBatch, OpenAIFile, Prisma } from "./generated/prisma/client.ts";

/** A row of `openai_files`. */
export type OpenAIFileRecord = OpenAIFile;
/** A row of `openai_batches`. */
export type OpenAIBatchRecord = OpenAIBatch;

/** One invalid line of an input file, as OpenAI's batch `errors.data[]` lists it. */
export interface OpenAIInvalidLine {
  /** The line's number in the file, from 1; null for a problem of the whole file. */
  line: number | null;
  code: string;
  message: string;
  param: string | null;
}

/** What {@link OpenAIFileRepository.create} stores. */
export interface NewOpenAIFile {
  id: string;
  userId: string;
  purpose: string;
  filename: string;
  bytes: number;
  /** The object key of an input file's bytes; absent for rendered output and error files. */
  key?: string | undefined;
  lineCount?: number | undefined;
  invalidCount?: number | undefined;
  invalidLines?: OpenAIInvalidLine[] | undefined;
  /** Output and error files: the OpenAI batch whose items they render. */
  openaiBatchId?: string | undefined;
  expiresAt?: Date | undefined;
}

/** A page of a listing, in the order asked for. */
export interface OpenAIPage<T> {
  data: T[];
  hasMore: boolean;
}

/** Where a listing starts and how it runs: OpenAI's `after` cursor is the last id seen. */
export interface OpenAIListQuery {
  /** The id of the last row of the previous page (exclusive). */
  after?: string | undefined;
  limit: number;
  /** `desc` (newest first, the default) or `asc`. */
  order?: "asc" | "desc" | undefined;
}

/** The object key of an OpenAI input file, derived from its owner and id. */
export function openAIFileObjectKey(userId: string, fileId: string): string {
  return `openai-files/${userId}/${fileId}`;
}

function idRange(query: OpenAIListQuery): Prisma.StringFilter | undefined {
  if (query.after === undefined) return undefined;
  // A malformed cursor names no row: the page starts at the beginning.
  if (!isId(query.after)) return undefined;
  return (query.order ?? "desc") === "desc" ? { lt: query.after } : { gt: query.after };
}

function page<T>(rows: T[], limit: number): OpenAIPage<T> {
  return { data: rows.slice(0, limit), hasMore: rows.length > limit };
}

/** Files of the OpenAI-compatible Files API, each owned by one user. */
export class OpenAIFileRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Records a file (an input file's object is stored before). */
  create(file: NewOpenAIFile): Promise<OpenAIFileRecord> {
    return this.#db.openAIFile.create({
      data: {
        id: file.id,
        userId: file.userId,
        purpose: file.purpose,
        filename: file.filename,
        bytes: BigInt(file.bytes),
        key: file.key ?? null,
        lineCount: file.lineCount ?? 0,
        invalidCount: file.invalidCount ?? 0,
        ...(file.invalidLines === undefined
          ? {}
          : { invalidLines: file.invalidLines as unknown as Prisma.InputJsonValue }),
        openaiBatchId: file.openaiBatchId ?? null,
        expiresAt: file.expiresAt ?? null,
      },
    });
  }

  /** The user's file; a missing or another user's file is {@link NotFoundError}. */
  async findForUser(userId: string, fileId: string): Promise<OpenAIFileRecord> {
    const file = isId(fileId) ? await this.#db.openAIFile.findFirst({ where: { id: fileId, userId } }) : null;
    if (file === null) throw new NotFoundError("file", fileId);
    return file;
  }

  /** The user's files, by id (creation order), `limit` at most. */
  async list(
    userId: string,
    query: OpenAIListQuery & { purpose?: string | undefined },
  ): Promise<OpenAIPage<OpenAIFileRecord>> {
    const range = idRange(query);
    const rows = await this.#db.openAIFile.findMany({
      where: {
        userId,
        ...(query.purpose === undefined ? {} : { purpose: query.purpose }),
        ...(range === undefined ? {} : { id: range }),
      },
      orderBy: { id: query.order ?? "desc" },
      take: query.limit + 1,
    });
    return page(rows, query.limit);
  }

  /** Deletes the user's file row and returns it (the caller deletes its object). */
  async delete(userId: string, fileId: string): Promise<OpenAIFileRecord> {
    const file = await this.findForUser(userId, fileId);
    await this.#db.openAIFile.deleteMany({ where: { id: file.id, userId } });
    return file;
  }
}

/** What {@link OpenAIBatchRepository.create} stores. */
export interface NewOpenAIBatch {
  id: string;
  userId: string;
  /** The genq batch running its requests; absent when it failed validation. */
  batchId?: string | undefined;
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata?: Record<string, string> | null | undefined;
  status: "in_progress" | "failed";
  errors?: OpenAIInvalidLine[] | undefined;
  total: number;
  createdAt: Date;
  expiresAt: Date;
}

/** The end of an OpenAI batch, written once (see {@link OpenAIBatchRepository.finish}). */
export interface OpenAIBatchEnd {
  status: "completed" | "cancelled" | "expired";
  outputFileId: string | null;
  errorFileId: string | null;
  total: number;
  completed: number;
  failed: number;
  usage: OpenAIBatchUsage;
  /** When the genq batch finished. */
  finishedAt: Date;
}

/** One request of an OpenAI batch as its genq item ended, for the output and error files. */
export type OpenAIBatchItemRow = Pick<
  Job,
  | "id"
  | "itemIndex"
  | "status"
  | "model"
  | "metadata"
  | "result"
  | "errorCode"
  | "errorMessage"
  | "inputTokens"
  | "outputTokens"
  | "createdAt"
  | "finishedAt"
>;

/** Usage summed over a batch's items. */
export interface OpenAIBatchUsage {
  inputTokens: number;
  outputTokens: number;
}

/** Batches of the OpenAI-compatible Batch API. */
export class OpenAIBatchRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Records a batch: running as the genq batch `batchId`, or failed at validation. */
  create(batch: NewOpenAIBatch): Promise<OpenAIBatchRecord> {
    const now = batch.createdAt;
    return this.#db.openAIBatch.create({
      data: {
        id: batch.id,
        userId: batch.userId,
        batchId: batch.batchId ?? null,
        inputFileId: batch.inputFileId,
        endpoint: batch.endpoint,
        completionWindow: batch.completionWindow,
        ...(batch.metadata === undefined || batch.metadata === null ? {} : { metadata: batch.metadata }),
        status: batch.status,
        ...(batch.errors === undefined ? {} : { errors: batch.errors as unknown as Prisma.InputJsonValue }),
        total: batch.total,
        expiresAt: batch.expiresAt,
        createdAt: now,
        ...(batch.status === "in_progress" ? { inProgressAt: now } : { failedAt: now }),
      },
    });
  }

  /** The user's batch; a missing or another user's batch is {@link NotFoundError}. */
  async findForUser(userId: string, id: string): Promise<OpenAIBatchRecord> {
    const batch = isId(id) ? await this.#db.openAIBatch.findFirst({ where: { id, userId } }) : null;
    if (batch === null) throw new NotFoundError("batch", id);
    return batch;
  }

  /** A batch by id (for a file that renders it; the file's owner was checked), or null. */
  findById(id: string): Promise<OpenAIBatchRecord | null> {
    return this.#db.openAIBatch.findUnique({ where: { id } });
  }

  /** The user's batches, newest first. */
  async list(userId: string, query: OpenAIListQuery): Promise<OpenAIPage<OpenAIBatchRecord>> {
    const range = idRange({ ...query, order: "desc" });
    const rows = await this.#db.openAIBatch.findMany({
      where: { userId, ...(range === undefined ? {} : { id: range }) },
      orderBy: { id: "desc" },
      take: query.limit + 1,
    });
    return page(rows, query.limit);
  }

  /** Marks a cancel (or an expiry) asked for; the genq batch's cancel does the work. */
  async markCancelling(id: string, reason: "cancel" | "expire"): Promise<OpenAIBatchRecord> {
    return this.#db.openAIBatch.update({
      where: { id },
      data:
        reason === "cancel"
          ? { cancellingAt: new Date() }
          : { expireRequested: true, cancellingAt: new Date() },
    });
  }

  /**
   * Ends an in-progress batch once: the conditional update lets exactly one of
   * concurrent readers write the end (and its files); the others get null and read
   * the batch again.
   */
  async finish(id: string, end: OpenAIBatchEnd, files: NewOpenAIFile[]): Promise<OpenAIBatchRecord | null> {
    return this.#db.$transaction(async (transaction) => {
      const at = end.finishedAt;
      const updated = await transaction.openAIBatch.updateMany({
        where: { id, status: "in_progress" },
        data: {
          status: end.status,
          outputFileId: end.outputFileId,
          errorFileId: end.errorFileId,
          total: end.total,
          completed: end.completed,
          failed: end.failed,
          inputTokens: BigInt(end.usage.inputTokens),
          outputTokens: BigInt(end.usage.outputTokens),
          finalizingAt: at,
          ...(end.status === "completed" ? { completedAt: at } : {}),
          ...(end.status === "cancelled" ? { cancelledAt: at } : {}),
          ...(end.status === "expired" ? { expiredAt: at } : {}),
        },
      });
      if (updated.count === 0) return null;
      for (const file of files) {
        await transaction.openAIFile.create({
          data: {
            id: file.id,
            userId: file.userId,
            purpose: file.purpose,
            filename: file.filename,
            bytes: BigInt(file.bytes),
            openaiBatchId: file.openaiBatchId ?? null,
            expiresAt: file.expiresAt ?? null,
          },
        });
      }
      return transaction.openAIBatch.findUniqueOrThrow({ where: { id } });
    });
  }

  /** A batch's items in item order, `limit` from after `afterIndex`, for the output and error files. */
  items(
    batchId: string,
    query: { afterIndex?: number | undefined; limit: number },
  ): Promise<OpenAIBatchItemRow[]> {
    return this.#db.job.findMany({
      where: {
        batchId,
        ...(query.afterIndex === undefined ? {} : { itemIndex: { gt: query.afterIndex } }),
      },
      orderBy: { itemIndex: "asc" },
      take: query.limit,
      select: {
        id: true,
        itemIndex: true,
        status: true,
        model: true,
        metadata: true,
        result: true,
        errorCode: true,
        errorMessage: true,
        inputTokens: true,
        outputTokens: true,
        createdAt: true,
        finishedAt: true,
      },
    });
  }

  /** Tokens used by a batch's items so far. */
  async usage(batchId: string): Promise<OpenAIBatchUsage> {
    const sums = await this.#db.job.aggregate({
      where: { batchId },
      _sum: { inputTokens: true, outputTokens: true },
    });
    return { inputTokens: sums._sum.inputTokens ?? 0, outputTokens: sums._sum.outputTokens ?? 0 };
  }
}
