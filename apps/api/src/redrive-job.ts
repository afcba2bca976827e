import { GenqError, type ImageJobInput, type JobStatus, NotFoundError, type TextJobInput } from "@genq/core";
import type { AdmissionHold, Database, JobRecord } from "@genq/db";
import { eventStreamKey } from "@genq/events";
import type { JobLifecycle } from "@genq/lifecycle";
import type { JobQueues } from "@genq/queue";
import { QuotaExceededError, type QuotaLedger } from "@genq/quota";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import { RouterCatalogCache } from "./router-catalog-cache.ts";
import { admissionHold } from "./submit-job.ts";
import { planRequest } from "./worst-case-quota.ts";

/** What {@link JobRedrive} needs: the API's resources. */
export interface JobRedriveOptions {
  db: Database;
  lifecycle: JobLifecycle;
  queues: JobQueues;
  redis: Redis;
  /** Absent: no quota, nothing is held. */
  quota: QuotaLedger | undefined;
  catalogs: RouterCatalogCache;
  logger: FastifyBaseLogger;
}

/** Why one job of a redrive was not redriven. */
export type RedriveRefusal =
  | { code: "not_found"; message: string }
  | { code: "conflict"; message: string; status?: JobStatus }
  | { code: "quota_exceeded"; message: string; error: QuotaExceededError };

/** The outcome of one job's redrive: the job queued again, or why not. */
export type RedriveResult = { redriven: true; job: JobRecord } | { redriven: false; refusal: RedriveRefusal };

/**
 * Runs failed jobs again (issue 16, decision 0024): plans each job from its stored
 * request as a new submission is planned, asks the lifecycle to redrive it (failed →
 * queued with the quota held anew, in one statement), then queues a new BullMQ entry
 * for it (the failed entry is removed first, so its attempt budget starts over) and
 * clears its live event stream, whose terminal event belongs to the earlier run.
 */
export class JobRedrive {
  readonly #options: JobRedriveOptions;

  constructor(options: JobRedriveOptions) {
    this.#options = options;
  }

  /**
   * Redrives one job. Given `userId`, only that user's job (another's is `not_found`).
   * Never throws for a refusal: the caller decides how to report it.
   */
  async redrive(jobId: string, userId?: string): Promise<RedriveResult> {
    const { db, lifecycle } = this.#options;
    const current = await db.job.findUnique({
      where: { id: jobId },
      select: {
        userId: true,
        type: true,
        status: true,
        input: true,
        provider: true,
        model: true,
        batch: { select: { status: true } },
      },
    });
    if (current === null || (userId !== undefined && current.userId !== userId)) {
      return refused({ code: "not_found", message: `job ${jobId} was not found` });
    }
    if (current.status !== "failed") return refused(notFailed(jobId, current.status));
    const { hold, outputTokens, resetsAt } = await this.#hold(current);
    const outcome = await lifecycle.redrive({
      jobId,
      userId,
      reservedOutputTokens: current.type === "text" ? outputTokens : null,
      hold,
    });
    switch (outcome.outcome) {
      case "redriven":
        await this.#queue(outcome.job, current.batch?.status === "completed");
        return { redriven: true, job: outcome.job };
      case "not_found":
        return refused({ code: "not_found", message: `job ${jobId} was not found` });
      case "not_failed":
        return refused(notFailed(jobId, outcome.status));
      case "batch_canceled":
        return refused({
          code: "conflict",
          message: `job ${jobId} is an item of batch ${outcome.batchId}, which was canceled; its items are not run again`,
        });
      case "quota_exceeded": {
        const { outcome: _, ...exceeded } = outcome;
        const error = new QuotaExceededError({ ...exceeded, resetsAt });
        return refused({ code: "quota_exceeded", message: error.message, error });
      }
    }
  }

  /**
   * {@link JobRedrive.redrive} for one job, with a refusal thrown as the API's error
   * (404, 409, 429 `quota_exceeded`).
   */
  async redriveOrThrow(jobId: string, userId?: string): Promise<JobRecord> {
    const result = await this.redrive(jobId, userId);
    if (result.redriven) return result.job;
    throw refusalError(jobId, result.refusal);
  }

  /** The new run's hold: the plan of the stored request, as `admitJob` holds a new one. */
  async #hold(job: {
    userId: string;
    type: "text" | "image";
    input: unknown;
    provider: string | null;
    model: string | null;
  }): Promise<{ hold: AdmissionHold | undefined; outputTokens: number | null; resetsAt: Date }> {
    const catalog = await this.#options.catalogs.get();
    const request = {
      provider: job.provider ?? undefined,
      model: job.model ?? undefined,
      ...(job.type === "image"
        ? { type: "image" as const, input: job.input as ImageJobInput }
        : { type: "text" as const, input: job.input as TextJobInput }),
    };
    const plan = planRequest(request, catalog?.routing);
    const terms = this.#options.quota?.holdTerms();
    return {
      outputTokens: plan.outputTokens,
      resetsAt: terms?.period.resetsAt ?? new Date(),
      hold: admissionHold(this.#options.quota, plan, catalog),
    };
  }

  /** Queues the redriven job afresh; a failure leaves it to the reconciler (the row is queued). */
  async #queue(job: JobRecord, batchReopened: boolean): Promise<void> {
    const { queues, redis, logger } = this.#options;
    try {
      const keys = [eventStreamKey(queues.prefix, { kind: "job", id: job.id })];
      if (batchReopened && job.batchId !== null)
        keys.push(eventStreamKey(queues.prefix, { kind: "batch", id: job.batchId }));
      // The streams end at their terminal event: a new session must not replay the earlier run's.
      await redis.del(...keys);
      await queues.requeue({ id: job.id, type: job.type, priority: job.priority });
    } catch (error) {
      logger.warn({ err: error, jobId: job.id }, "could not queue the redriven job; the reconciler will");
    }
  }
}

function refused(refusal: RedriveRefusal): RedriveResult {
  return { redriven: false, refusal };
}

function notFailed(jobId: string, status: JobStatus): RedriveRefusal {
  return {
    code: "conflict",
    status,
    message: `job ${jobId} is ${status}; only failed jobs can be retried`,
  };
}

/** The API error of a refusal. */
export function refusalError(jobId: string, refusal: RedriveRefusal): GenqError {
  switch (refusal.code) {
    case "not_found":
      return new NotFoundError("job", jobId);
    case "quota_exceeded":
      return refusal.error;
    case "conflict":
      return new GenqError("conflict", refusal.message, {
        details: { jobId, ...(refusal.status === undefined ? {} : { status: refusal.status }) },
      });
  }
}

/** The {@link JobRedrive} of an API instance, over its resources (`app.genq`). */
export function createJobRedrive(app: FastifyInstance): JobRedrive {
  const { db, lifecycle, queues, redis, quota } = app.genq;
  return new JobRedrive({
    db,
    lifecycle,
    queues,
    redis,
    quota,
    catalogs: new RouterCatalogCache({ redis, prefix: queues.prefix }),
    logger: app.log,
  });
}
