import type { JobType, QueuedJobPayload } from "@genq/core";
import type { ClaimLimits, Plan } from "@genq/db";
import type { JobQueues } from "@genq/queue";
import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

/** How many times a tenant's base in-flight cap each plan gets (as for batches, decision 0006). */
export const DEFAULT_TENANT_PLAN_WEIGHTS: Readonly<Record<Plan, number>> = {
  basic: 1,
  professional: 2,
  enterprise: 4,
};

/** Options for {@link TenantGate}. */
export interface TenantGateOptions {
  queues: JobQueues;
  /** Holds each tenant's parked set (the caller owns the connection). */
  redis: Redis;
  logger: Logger;
  /**
   * The most jobs one user on the `basic` plan may have running at once over every
   * worker; other plans get a multiple (`planWeights`).
   */
  tenantCap: number;
  planWeights?: Readonly<Record<Plan, number>> | undefined;
  /**
   * How long a parked job waits at most before it is tried again by itself, should
   * the wake-up of a finishing job be lost (a crash between the two). Default 5 s.
   */
  parkMs?: number | undefined;
}

/** Parked jobs one finished job wakes at most, skipping members that already left the delayed set. */
const MAX_PROMOTE_TRIES = 8;

/**
 * Per-tenant in-flight caps for every job. A delivery whose owner already runs its
 * cap of jobs is parked: moved to BullMQ's delayed set (spending no attempt) and
 * listed in the owner's parked set in Redis, most urgent first. When one of the
 * owner's jobs stops running, the next parked job is promoted back to the queue.
 * So a tenant holds at most `cap` worker slots, and its flood of (urgent) jobs is
 * set aside once each instead of sitting in front of every other tenant's jobs.
 */
export class TenantGate {
  readonly #options: TenantGateOptions;
  readonly #weights: Readonly<Record<Plan, number>>;
  readonly #parkMs: number;
  readonly #typeByQueueName = new Map<string, JobType>();
  /** The limits the job repository's claim checks. */
  readonly limits: ClaimLimits;

  constructor(options: TenantGateOptions) {
    if (!Number.isInteger(options.tenantCap) || options.tenantCap < 1)
      throw new RangeError("tenantCap must be a positive integer");
    this.#options = options;
    this.#weights = options.planWeights ?? DEFAULT_TENANT_PLAN_WEIGHTS;
    this.#parkMs = options.parkMs ?? 5_000;
    for (const type of ["text", "image"] as const)
      this.#typeByQueueName.set(options.queues.definition(type).name, type);
    this.limits = { tenantCap: (plan) => this.capFor(plan) };
  }

  /** The in-flight cap of a tenant on `plan`. */
  capFor(plan: Plan): number {
    return this.#options.tenantCap * (this.#weights[plan] ?? 1);
  }

  #parkedKey(userId: string): string {
    return `${this.#options.queues.prefix}:parked:${userId}`;
  }

  /**
   * Parks a delivery whose owner is at its cap: into the delayed set for `parkMs`,
   * then into the owner's parked set (in that order, so a wake-up never finds it
   * still active). The caller then throws BullMQ's `DelayedError`.
   */
  async park(job: Job<QueuedJobPayload>, userId: string, token: string): Promise<void> {
    await job.moveToDelayed(Date.now() + this.#parkMs, token);
    const type = this.#typeByQueueName.get(job.queueName);
    if (type === undefined || job.id === undefined) return;
    const { redis } = this.#options;
    // Most urgent first, then first parked first.
    const score = (job.opts.priority ?? 0) * 1e13 + Date.now();
    const key = this.#parkedKey(userId);
    // A tenant's parked set outlives its members only briefly (they come back after `parkMs` anyway).
    await redis
      .multi()
      .zadd(key, score, `${type}:${job.id}`)
      .pexpire(key, this.#parkMs * 20)
      .exec();
  }

  /**
   * One of `userId`'s jobs stopped running (finished, retried or postponed): promotes
   * its next parked job, if any. Best effort: a lost wake-up costs at most `parkMs`.
   */
  async wake(userId: string): Promise<void> {
    try {
      const { redis } = this.#options;
      for (let tries = 0; tries < MAX_PROMOTE_TRIES; tries += 1) {
        const [member] = await redis.zpopmin(this.#parkedKey(userId), 1);
        if (member === undefined) return;
        const separator = member.indexOf(":");
        const type = member.slice(0, separator) as JobType;
        const job = await this.#options.queues.queue(type).getJob(member.slice(separator + 1));
        if (job === undefined || !(await job.isDelayed())) continue; // it came back by itself meanwhile
        try {
          await job.promote();
          return;
        } catch {
          // Left the delayed set between the check and the promotion: try the next one.
        }
      }
    } catch (error) {
      this.#options.logger.warn(
        { err: error, userId },
        "could not wake a parked job; it runs after its delay",
      );
    }
  }
}
