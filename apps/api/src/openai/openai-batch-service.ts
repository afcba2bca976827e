import {
  type BatchTier,
  type CheckedBatchItem,
  checkBatchTier,
  GenqError,
  newId,
  PRIORITIES,
} from "@genq/core";
import {
  type BatchCreation,
  BatchItemSpool,
  type BatchRecord,
  type BatchRepository,
  type NewBatch,
  type OpenAIBatchRecord,
  type OpenAIBatchRepository,
  type OpenAIFileRecord,
  type OpenAIFileRepository,
  type OpenAIInvalidLine,
  type Plan,
} from "@genq/db";
import type { JobQueues } from "@genq/queue";
import { checkPlanPriority, type QuotaLedger } from "@genq/quota";
import { worstCaseQuota } from "../worst-case-quota.ts";
import type { OpenAIFileService } from "./openai-file-service.ts";
import { toBatchId } from "./openai-ids.ts";
import {
  fileProblems,
  type InputFileSummary,
  MAX_INPUT_FILE_BYTES,
  noteInvalid,
  numberedLines,
} from "./openai-input-file.ts";
import type { BatchEnding } from "./openai-output-lines.ts";
import type { OpenAIBatchState } from "./openai-views.ts";

/** How long a batch may run before it expires: OpenAI's only completion window. */
const COMPLETION_WINDOW_MS = 24 * 60 * 60 * 1000;

/** Options for {@link OpenAIBatchService}. */
export interface OpenAIBatchServiceOptions {
  batches: BatchRepository;
  openaiBatches: OpenAIBatchRepository;
  files: OpenAIFileRepository;
  fileService: OpenAIFileService;
  queues: JobQueues;
  quota: QuotaLedger | undefined;
  /** The longest input line, in bytes. */
  maxLineBytes: number;
  /**
   * The tier a batch with this completion window runs on: the one place an OpenAI
   * batch's tier is chosen (the operator's economy switch belongs here).
   * @defaultValue always `online`
   */
  tierFor?: ((completionWindow: string) => BatchTier) | undefined;
}

/** What `POST /batches` asks for, checked by the route's schema. */
export interface CreateOpenAIBatch {
  userId: string;
  plan: Plan;
  /** The input file's UUID. */
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata?: Record<string, string> | null | undefined;
}

/** A batch row with what it is doing now. */
export interface OpenAIBatchSnapshot {
  record: OpenAIBatchRecord;
  state: OpenAIBatchState;
}

/**
 * OpenAI batches as genq batches: creating one reads its input file into the items
 * of a genq batch (so quotas, fairness, priorities, webhooks and live events apply
 * as to any batch), reading one follows that batch and, once it has finished,
 * writes the end once (the output and error files, the counts and usage).
 */
export class OpenAIBatchService {
  readonly #options: OpenAIBatchServiceOptions;
  readonly #tierFor: (completionWindow: string) => BatchTier;

  constructor(options: OpenAIBatchServiceOptions) {
    this.#options = options;
    this.#tierFor = options.tierFor ?? (() => "online");
  }

  /**
   * Creates a batch of an input file. A file with invalid lines makes a batch that
   * failed validation (`errors.data[]` lists them by line), as at OpenAI; else every
   * line becomes an item of a new genq batch, its model the line's `body.model`.
   */
  async create(request: CreateOpenAIBatch): Promise<OpenAIBatchSnapshot> {
    const file = await this.#options.files.findForUser(request.userId, request.inputFileId);
    if (file.purpose !== "batch") {
      throw new GenqError(
        "invalid_request",
        "input_file_id: the file was not uploaded with purpose `batch`",
        {
          details: { field: "input_file_id" },
        },
      );
    }
    checkPlanPriority(request.plan, "low");
    const id = newId();
    const createdAt = new Date();
    const common = {
      id,
      userId: request.userId,
      inputFileId: file.id,
      endpoint: request.endpoint,
      completionWindow: request.completionWindow,
      metadata: request.metadata,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + COMPLETION_WINDOW_MS),
    };
    if (file.invalidCount > 0) {
      return this.#failed(common, (file.invalidLines as OpenAIInvalidLine[] | null) ?? []);
    }
    const summary: InputFileSummary = { requestCount: 0, invalidCount: 0, invalidLines: [] };
    const spool = await BatchItemSpool.fromItems(this.#items(request.userId, file, summary));
    try {
      for (const problem of fileProblems(summary)) noteInvalid(summary, problem);
      if (summary.invalidCount > 0) return await this.#failed(common, summary.invalidLines);
      const created = await this.#storeGenqBatch(
        {
          userId: request.userId,
          type: "text",
          priority: PRIORITIES.low,
          metadata: { openai_batch_id: toBatchId(id) },
        },
        spool,
        this.#tierFor(request.completionWindow),
      );
      const record = await this.#options.openaiBatches.create({
        ...common,
        batchId: created.batch.id,
        status: "in_progress",
        total: created.batch.total,
      });
      return { record, state: this.#runningState(record, created.batch) };
    } finally {
      await spool.close();
    }
  }

  /**
   * Stores the genq batch that runs an OpenAI batch's requests, on the tier the operator
   * chose for OpenAI batches (economy: the providers' batch APIs, decision 0022).
   */
  async #storeGenqBatch(batch: NewBatch, spool: BatchItemSpool, tier: BatchTier): Promise<BatchCreation> {
    checkBatchTier({ type: batch.type, tier });
    return this.#options.batches.create({ ...batch, tier }, spool);
  }

  async #failed(
    common: Omit<Parameters<OpenAIBatchRepository["create"]>[0], "status" | "total">,
    errors: OpenAIInvalidLine[],
  ): Promise<OpenAIBatchSnapshot> {
    // Nothing of a batch that failed validation runs: OpenAI counts no request of it.
    const record = await this.#options.openaiBatches.create({
      ...common,
      status: "failed",
      errors,
      total: 0,
    });
    return { record, state: { status: "failed", counts: { total: 0, completed: 0, failed: 0 } } };
  }

  /**
   * The input file's lines as batch items (checked again: the bytes are read back
   * from storage); the quota is checked once, with the first valid item, as for
   * genq's own batches.
   */
  async *#items(
    userId: string,
    file: OpenAIFileRecord,
    summary: InputFileSummary,
  ): AsyncIterable<CheckedBatchItem> {
    const stream = await this.#options.fileService.openInput(file);
    let quotaChecked = this.#options.quota === undefined;
    try {
      for await (const { line, checked } of numberedLines(stream, {
        maxLineBytes: this.#options.maxLineBytes,
        maxBytes: MAX_INPUT_FILE_BYTES,
      })) {
        const index = summary.requestCount;
        summary.requestCount += 1;
        if (!checked.valid) {
          noteInvalid(summary, { line, ...checked.error });
          continue;
        }
        if (!quotaChecked) {
          quotaChecked = true;
          await this.#options.quota?.check({
            userId,
            ...worstCaseQuota({ type: "text", input: checked.input }),
          });
        }
        yield {
          index,
          valid: true,
          input: checked.input,
          model: checked.model,
          metadata: { custom_id: checked.customId },
        };
      }
    } finally {
      stream.destroy();
    }
  }

  /** The user's batch as it is now (ending it first when its genq batch has finished). */
  async get(userId: string, id: string): Promise<OpenAIBatchSnapshot> {
    return this.refresh(await this.#options.openaiBatches.findForUser(userId, id));
  }

  /**
   * A batch as it is now. While it runs, its state is read from its genq batch; an
   * expired one is cancelled; a finished one is ended once (concurrent readers
   * race on a conditional update, the losers read the winner's end).
   */
  async refresh(record: OpenAIBatchRecord): Promise<OpenAIBatchSnapshot> {
    if (record.status !== "in_progress") return { record, state: finalState(record) };
    const genq = record.batchId === null ? null : await this.#findGenqBatch(record.userId, record.batchId);
    if (genq !== null && genq.status === "running") {
      if (!record.expireRequested && Date.now() >= record.expiresAt.getTime()) {
        const expiring = await this.#cancel(record, "expire");
        return { record: expiring, state: this.#runningState(expiring, genq) };
      }
      return { record, state: this.#runningState(record, genq) };
    }
    const ending: BatchEnding = record.expireRequested
      ? "expired"
      : genq === null || genq.status === "canceled"
        ? "cancelled"
        : "completed";
    const ended = await this.#finish(record, genq, ending);
    return { record: ended, state: finalState(ended) };
  }

  /** The genq batch running a batch's requests, or null once data retention removed it. */
  async #findGenqBatch(userId: string, batchId: string): Promise<BatchRecord | null> {
    return this.#options.batches.findForUser(userId, batchId).catch((error: unknown) => {
      if (GenqError.is(error) && error.code === "not_found") return null;
      throw error;
    });
  }

  #runningState(record: OpenAIBatchRecord, genq: BatchRecord): OpenAIBatchState {
    return {
      status: record.cancellingAt === null ? "in_progress" : "cancelling",
      counts: { total: genq.total, completed: genq.completedCount, failed: genq.failedCount },
    };
  }

  async #finish(
    record: OpenAIBatchRecord,
    genq: BatchRecord | null,
    ending: BatchEnding,
  ): Promise<OpenAIBatchRecord> {
    const { fileService, openaiBatches } = this.#options;
    const sizes = genq === null ? { output: 0, error: 0 } : await fileService.measure(genq.id, ending);
    const usage = genq === null ? { inputTokens: 0, outputTokens: 0 } : await openaiBatches.usage(genq.id);
    const file = (purpose: string, filename: string, bytes: number) => ({
      id: newId(),
      userId: record.userId,
      purpose,
      filename,
      bytes,
      openaiBatchId: record.id,
    });
    const output =
      sizes.output > 0 ? file("batch_output", `${toBatchId(record.id)}_output.jsonl`, sizes.output) : null;
    const error =
      sizes.error > 0 ? file("batch_output", `${toBatchId(record.id)}_error.jsonl`, sizes.error) : null;
    const ended = await openaiBatches.finish(
      record.id,
      {
        status: ending,
        outputFileId: output?.id ?? null,
        errorFileId: error?.id ?? null,
        total: genq?.total ?? record.total,
        completed: genq?.completedCount ?? 0,
        failed: genq?.failedCount ?? 0,
        usage,
        finishedAt: genq?.finishedAt ?? new Date(),
      },
      [output, error].filter((value) => value !== null),
    );
    return ended ?? (await openaiBatches.findForUser(record.userId, record.id));
  }

  /** Cancels the user's batch: its genq batch's items not started are cancelled at once. */
  async cancel(userId: string, id: string): Promise<OpenAIBatchSnapshot> {
    const record = await this.#options.openaiBatches.findForUser(userId, id);
    if (record.status !== "in_progress") {
      if (record.status === "cancelled") return { record, state: finalState(record) };
      throw new GenqError(
        "conflict",
        `batch ${toBatchId(record.id)} is ${record.status} and cannot be cancelled`,
        {
          details: { status: record.status },
        },
      );
    }
    return this.refresh(record.cancellingAt === null ? await this.#cancel(record, "cancel") : record);
  }

  async #cancel(record: OpenAIBatchRecord, reason: "cancel" | "expire"): Promise<OpenAIBatchRecord> {
    const { batches, openaiBatches, queues, quota } = this.#options;
    const marked = await openaiBatches.markCancelling(record.id, reason);
    if (record.batchId === null) return marked;
    const { dispatched } = await batches
      .requestCancel(record.userId, record.batchId)
      .catch((error: unknown) => {
        // A genq batch that finished meanwhile cannot be cancelled: the next read ends this one.
        if (GenqError.is(error) && error.code === "conflict") return { dispatched: [] };
        throw error;
      });
    // As genq's own batch cancel: canceled items still waiting in BullMQ would only be skipped by the workers.
    await Promise.all(
      dispatched.map(async (item) => {
        await queues.removeWaiting(item.type, item.id).catch(() => {});
        await quota?.release(item.id).catch(() => {});
      }),
    );
    return marked;
  }
}

/** The state of a batch that no longer runs, from its row. */
function finalState(record: OpenAIBatchRecord): OpenAIBatchState {
  return {
    status: record.status as OpenAIBatchState["status"],
    counts: { total: record.total, completed: record.completed, failed: record.failed },
  };
}
