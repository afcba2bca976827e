import { once } from "node:events";
import type { JobType, QueuedJobPayload } from "@genq/core";
import type { ClaimLimits, Plan } from "@genq/db";
import type { JobQueues } from "@genq/queue";
import { Job } from "bullmq";
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
  /**
   * A connection in subscriber mode (the caller owns it): parks are announced on a
   * channel, so a finishing job wakes someone only when its owner has jobs parked,
   * and costs no Redis command otherwise. Without it, every finished job looks.
   */
  subscriber?: Redis | undefined;
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
 * Parks a member and, when the owner's last announcement is older than the refresh
 * interval (or missing), records it and announces the owner on the channel: one
 * round trip. KEYS: the owner's parked set, the set of owners with parked jobs
 * (scored by their last announcement). ARGV: score, member, set lifetime ms, now,
 * refresh ms, user id, channel.
 */
const PARK_SCRIPT = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local now = tonumber(ARGV[4])
local last = redis.call('ZSCORE', KEYS[2], ARGV[6])
if (not last) or now - tonumber(last) >= tonumber(ARGV[5]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[2], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PUBLISH', ARGV[7], ARGV[6])
end
return 1
`;

interface GateCommands {
  genqTenantPark(parkedKey: string, ownersKey: string, ...args: Array<string | number>): Promise<number>;
}

/**
 * Per-tenant in-flight caps for every job. A delivery whose owner already runs its
 * cap of jobs is parked: moved to BullMQ's delayed set (spending no attempt) and
 * listed in the owner's parked set in Redis, most urgent first. When one of the
 * owner's jobs stops running, the next parked job is promoted back to the queue.
 * So a tenant holds at most `cap` worker slots, and its flood of (urgent) jobs is
 * set aside once each instead of sitting in front of every other tenant's jobs.
 */
/** How long start waits for the gate's Redis connection before it goes on without the snapshot. */
const START_READY_TIMEOUT_MS = 5_000;

export class TenantGate {
  readonly #options: TenantGateOptions;
  readonly #weights: Readonly<Record<Plan, number>>;
  readonly #parkMs: number;
  readonly #typeByQueueName = new Map<string, JobType>();
  readonly #redis: Redis & GateCommands;
  /** Owners with parked jobs → until when this process assumes so (when subscribed). */
  readonly #parkedOwners = new Map<string, number>();
  readonly #onMessage = (channel: string, userId: string) => {
    if (channel === this.#channel) this.#extend(userId, Date.now());
  };
  #listening = false;
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
    options.redis.defineCommand("genqTenantPark", { lua: PARK_SCRIPT, numberOfKeys: 2 });
    this.#redis = options.redis as Redis & GateCommands;
  }

  /** How long a parked set lives without a new member; owners are remembered as long. */
  get #parkedLifetimeMs(): number {
    return this.#parkMs * 20;
  }

  get #channel(): string {
    return `${this.#options.queues.prefix}:parked-owners:announced`;
  }

  get #ownersKey(): string {
    return `${this.#options.queues.prefix}:parked-owners`;
  }

  /**
   * Subscribes to park announcements, then reads the owners announced recently
   * (so a process that starts during a flood knows whom to wake). Without a
   * subscriber, nothing to do: every wake looks.
   */
  async start(): Promise<void> {
    const { subscriber } = this.#options;
    if (subscriber === undefined || this.#listening) return;
    this.#listening = true;
    subscriber.on("message", this.#onMessage);
    await subscriber.subscribe(this.#channel);
    // Best effort: an owner missed here is woken by its park announcement or, at worst,
    // its parked jobs come back by themselves after parkMs.
    const owners = await this.#recentOwners().catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, "could not read the recently parked owners at start");
      return [] as string[];
    });
    for (let index = 0; index + 1 < owners.length; index += 2) {
      this.#extend(owners[index] ?? "", Number(owners[index + 1]));
    }
  }

  /**
   * The owners that parked within `parkedLifetimeMs`, with their times. The gate's
   * connection may still be connecting at start (it queues no command while it does):
   * wait for it, up to {@link START_READY_TIMEOUT_MS}.
   */
  async #recentOwners(): Promise<string[]> {
    const redis = this.#redis;
    if (redis.status !== "ready") {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        once(redis, "ready"),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("Redis not ready")), START_READY_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return redis.zrangebyscore(this.#ownersKey, Date.now() - this.#parkedLifetimeMs, "+inf", "WITHSCORES");
  }

  /** Stops listening to park announcements. */
  async close(): Promise<void> {
    const { subscriber } = this.#options;
    if (subscriber === undefined || !this.#listening) return;
    this.#listening = false;
    subscriber.off("message", this.#onMessage);
    if (subscriber.status === "ready") await subscriber.unsubscribe(this.#channel).catch(() => {});
  }

  #extend(userId: string, announcedAt: number): void {
    if (userId === "" || !Number.isFinite(announcedAt)) return;
    const until = announcedAt + this.#parkedLifetimeMs;
    if ((this.#parkedOwners.get(userId) ?? 0) < until) this.#parkedOwners.set(userId, until);
  }

  /** False only when this process knows `userId` has parked nothing lately (no command needed). */
  #mayHaveParked(userId: string): boolean {
    if (this.#options.subscriber === undefined) return true;
    const until = this.#parkedOwners.get(userId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#parkedOwners.delete(userId);
    return false;
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
    // Most urgent first, then first parked first.
    const now = Date.now();
    this.#extend(userId, now);
    const score = (job.opts.priority ?? 0) * 1e13 + now;
    // A tenant's parked set outlives its members only briefly (they come back after `parkMs` anyway).
    await this.#redis.genqTenantPark(
      this.#parkedKey(userId),
      this.#ownersKey,
      score,
      `${type}:${job.id}`,
      this.#parkedLifetimeMs,
      now,
      // Announced again well before listeners forget the owner.
      this.#parkMs * 5,
      userId,
      this.#channel,
    );
  }

  /**
   * One of `userId`'s jobs stopped running (finished, retried or postponed): promotes
   * its next parked job, if any. Best effort: a lost wake-up costs at most `parkMs`.
   */
  async wake(userId: string): Promise<void> {
    if (!this.#mayHaveParked(userId)) return;
    try {
      for (let tries = 0; tries < MAX_PROMOTE_TRIES; tries += 1) {
        const [member] = await this.#redis.zpopmin(this.#parkedKey(userId), 1);
        if (member === undefined) return;
        const separator = member.indexOf(":");
        const type = member.slice(0, separator) as JobType;
        const queue = this.#options.queues.queue(type);
        try {
          // Promoting needs only the id; BullMQ refuses a job no longer delayed (it came back by itself).
          await new Job(queue, type, {}, {}, member.slice(separator + 1)).promote();
          return;
        } catch {
          // Left the delayed set meanwhile, or gone: try the next one.
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
