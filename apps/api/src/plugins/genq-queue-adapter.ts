import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { errorHandler } from "@bull-board/api/dist/handlers/error.js";
import type { ControllerHandlerReturnType, HTTPStatus } from "@bull-board/api/typings/app";
import { GenqError, type JobStatus, priorityName } from "@genq/core";
import type { Database } from "@genq/db";
import type { JobLifecycle } from "@genq/lifecycle";
import type { QuotaLedger } from "@genq/quota";
import type { Job, Queue } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import { httpStatusFor } from "../http-errors.ts";
import type { JobRedrive } from "../redrive-job.ts";

/** What {@link GenqQueueAdapter} needs besides its queue. */
export interface GenqQueueAdapterOptions {
  db: Database;
  lifecycle: JobLifecycle;
  redrive: JobRedrive;
  quota: QuotaLedger | undefined;
  logger: FastifyBaseLogger;
}

/**
 * What Bull Board shows as a genq job's data: who and what, never the prompt, the
 * result or a secret (those stay in Postgres, behind the owner's API key).
 */
export interface BoardJobData {
  jobId: string;
  userId: string;
  type: string;
  status: JobStatus;
  priority: string;
  provider: string | null;
  model: string | null;
  batchId: string | null;
  itemIndex: number | null;
  /** Attempts spent (postponed runs not counted), as `GET /v1/jobs/{id}` reports them. */
  attempt: number;
  errorCode: string | null;
}

/** BullMQ states of a job that has not started: removing it from the board cancels it in genq. */
const PENDING_STATES = new Set(["waiting", "wait", "prioritized", "delayed", "paused", "waiting-children"]);

/** Board clean statuses that only drop Redis copies of finished jobs. */
const FINISHED_STATES = new Set(["completed", "failed"]);

/**
 * Bull Board's BullMQ adapter for genq's job queues (decision 0024). A genq job's
 * BullMQ entry carries only its id, so each job the board lists or opens gets its
 * {@link BoardJobData} from Postgres (one query per page); the `data` formatter keeps
 * anything else out. The board's actions keep genq's record and Redis in step:
 *
 * - Retry of a failed job is a redrive (`JobRedrive`): the row goes back to `queued`
 *   with a fresh attempt budget and a quota hold; a refusal answers 404/409/429.
 * - Remove of a job that has not started cancels it in genq (the row ends `canceled`,
 *   its hold released), then drops its Redis entry; remove of a finished job drops only
 *   the Redis copy (the row stays: Postgres is the record, and the reconciler never
 *   re-queues a finished row); a running job is canceled through the API, not here (409).
 * - Clean drops Redis copies of completed or failed jobs only; cleaning, emptying or
 *   obliterating waiting jobs (which the reconciler would put back, or which would
 *   vanish from genq's view) is refused (409), as are adding jobs and editing their data.
 */
export class GenqQueueAdapter extends BullMQAdapter {
  readonly #genq: GenqQueueAdapterOptions;

  constructor(queue: Queue, options: GenqQueueAdapterOptions) {
    super(queue);
    this.#genq = options;
    this.setFormatter("data", boardData);
    this.setFormatter("name", (job: { name?: string; data?: unknown }) => boardName(job));
  }

  override async getJobs(...args: Parameters<BullMQAdapter["getJobs"]>): Promise<Job[]> {
    const jobs = await super.getJobs(...args);
    await this.#describe(jobs);
    return jobs;
  }

  override async getJob(id: string): Promise<Job | undefined> {
    const job = await super.getJob(id);
    if (job !== undefined && job !== null) await this.#describe([job]);
    return job ?? undefined;
  }

  override async clean(...args: Parameters<BullMQAdapter["clean"]>): Promise<void> {
    const [status] = args;
    if (!FINISHED_STATES.has(status)) {
      throw boardError(
        new GenqError(
          "conflict",
          `cleaning ${status} jobs would take them from the queue behind genq's back; cancel them through the API`,
        ),
      );
    }
    await super.clean(...args);
  }

  override async empty(): Promise<void> {
    throw boardError(
      new GenqError("conflict", "emptying a genq queue is refused: cancel jobs through the API instead"),
    );
  }

  override async obliterate(): Promise<void> {
    throw boardError(new GenqError("conflict", "obliterating a genq queue is refused"));
  }

  override async addJob(): Promise<never> {
    throw boardError(
      new GenqError("conflict", "genq jobs are submitted through POST /v1/jobs, not the board"),
    );
  }

  /** Replaces each job's data with its genq view and routes its actions through genq. */
  async #describe(jobs: readonly Job[]): Promise<void> {
    if (jobs.length === 0) return;
    const ids = jobs.map((job) => jobIdOf(job));
    const rows = await this.#genq.db.job.findMany({
      where: { id: { in: ids.filter((id): id is string => id !== undefined) } },
      select: {
        id: true,
        userId: true,
        type: true,
        status: true,
        priority: true,
        provider: true,
        model: true,
        batchId: true,
        itemIndex: true,
        attempts: true,
        postponements: true,
        errorCode: true,
      },
    });
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const job of jobs) {
      const id = jobIdOf(job);
      const row = id === undefined ? undefined : byId.get(id);
      const data: BoardJobData | { jobId: string | undefined } =
        row === undefined
          ? { jobId: id }
          : {
              jobId: row.id,
              userId: row.userId,
              type: row.type,
              status: row.status,
              priority: priorityName(row.priority),
              provider: row.provider,
              model: row.model,
              batchId: row.batchId,
              itemIndex: row.itemIndex,
              attempt: row.attempts - row.postponements,
              errorCode: row.errorCode,
            };
      job.data = data;
      if (id !== undefined) this.#reroute(job, id);
    }
  }

  /** The board's Retry and Remove of this job, as genq means them. */
  #reroute(job: Job, jobId: string): void {
    const remove = job.remove.bind(job);
    const { redrive, lifecycle, db, quota, logger } = this.#genq;
    Object.assign(job, {
      retry: async () => {
        try {
          await redrive.redriveOrThrow(jobId);
        } catch (error) {
          throw boardError(error);
        }
        logger.info({ jobId }, "job redriven from the queue dashboard");
      },
      remove: async (options?: Parameters<Job["remove"]>[0]) => {
        const state = await job.getState();
        if (state === "active") {
          throw boardError(
            new GenqError(
              "conflict",
              `job ${jobId} is running; cancel it with POST /v1/jobs/${jobId}/cancel`,
            ),
          );
        }
        if (PENDING_STATES.has(state)) {
          const row = await db.job.findUnique({
            where: { id: jobId },
            select: { userId: true, status: true },
          });
          if (row?.status === "active") {
            throw boardError(new GenqError("conflict", `job ${jobId} is running; cancel it through the API`));
          }
          if (row?.status === "queued") {
            await lifecycle.cancel(row.userId, jobId);
            await quota?.release(jobId).catch(() => {});
            logger.info({ jobId }, "job canceled by its removal from the queue dashboard");
          }
        }
        await remove(options);
      },
      updateData: async () => {
        throw boardError(new GenqError("conflict", "a genq job's queue data is its id; it cannot be edited"));
      },
    });
  }
}

/** The genq job id of a BullMQ entry: its payload's, else the BullMQ id (they are the same). */
function jobIdOf(job: Job): string | undefined {
  const data = job.data as { jobId?: unknown } | undefined;
  if (typeof data?.jobId === "string") return data.jobId;
  return job.id;
}

const BOARD_FIELDS: ReadonlyArray<keyof BoardJobData> = [
  "jobId",
  "userId",
  "type",
  "status",
  "priority",
  "provider",
  "model",
  "batchId",
  "itemIndex",
  "attempt",
  "errorCode",
];

/** The `data` formatter: only the fields of {@link BoardJobData}, whatever the entry carries. */
export function boardData(data: unknown): Partial<BoardJobData> {
  if (data === null || typeof data !== "object") return {};
  const record = data as Record<string, unknown>;
  const view: Record<string, unknown> = {};
  for (const field of BOARD_FIELDS) if (field in record) view[field] = record[field];
  return view as Partial<BoardJobData>;
}

function boardName(job: { name?: string; data?: unknown }): string {
  const data = boardData(job.data);
  if (data.priority === undefined) return job.name ?? "";
  const item = data.batchId === null || data.batchId === undefined ? "" : ` · item ${data.itemIndex}`;
  return `${data.type} · ${data.priority}${item} · ${data.status}`;
}

/**
 * An error Bull Board answers with its status (its error handler reads `statusCode`);
 * the plugin's error handler puts genq's code and message in the body.
 */
export function boardError(error: unknown): Error {
  if (!GenqError.is(error)) return error instanceof Error ? error : new Error(String(error));
  return Object.assign(error, { statusCode: httpStatusFor(error.code) });
}

/**
 * The board's error handler: a genq error answers its status with genq's code and
 * message (its UI shows `message`); anything else goes to Bull Board's own handler.
 */
export function boardErrorResponse(error: Error & { statusCode?: HTTPStatus }): ControllerHandlerReturnType {
  const status = error.statusCode ?? (GenqError.is(error) ? httpStatusFor(error.code) : 500);
  // Anything else (a body Fastify could not parse, a failure) is answered as the board always did.
  if (!GenqError.is(error) || status >= 500) return errorHandler(error);
  // Bull Board's type lists the statuses its own handlers use; Fastify sends any (429 included).
  return {
    status: status as HTTPStatus,
    body: { error: { code: error.code, message: error.message }, message: error.message },
  };
}
