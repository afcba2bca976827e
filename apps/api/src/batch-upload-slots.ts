import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * Takes a slot when the user holds fewer than `cap` live leases: expired leases
 * (of a process that died mid-upload) are dropped first. KEYS[1] the user's set;
 * ARGV: now (ms), the lease's expiry (ms), cap, lease id, key TTL (ms).
 */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** Extends a lease still held. KEYS[1] the user's set; ARGV: expiry (ms), lease id, key TTL (ms). */
const REFRESH = `
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
`;

/** Options for {@link BatchUploadSlots}. */
export interface BatchUploadSlotsOptions {
  redis: Redis;
  /** Key prefix (the queue prefix), so deployments and tests stay apart. */
  prefix: string;
  /** Batch uploads one user may have in progress at once, over every API process. */
  perUser: number;
  /**
   * How long a lease lives without being renewed; a live upload renews it every
   * third of this, so a process that dies frees its slots after at most this long.
   * @defaultValue 30000
   */
  leaseMs?: number | undefined;
}

/** A slot taken; release it when the request ends (releasing twice is harmless). */
export interface BatchUploadLease {
  release(): Promise<void>;
}

/**
 * A per-user cap on concurrent batch uploads, shared by every API process through
 * Redis: each upload holds a lease (a member of the user's sorted set, scored by
 * its expiry) while its body is read and stored.
 */
export class BatchUploadSlots {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #leaseMs: number;
  /** The cap per user. */
  readonly perUser: number;

  constructor(options: BatchUploadSlotsOptions) {
    if (!Number.isInteger(options.perUser) || options.perUser < 1) {
      throw new Error(`perUser must be a positive integer, got ${options.perUser}`);
    }
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.perUser = options.perUser;
    this.#leaseMs = options.leaseMs ?? 30_000;
  }

  /** A lease, or undefined when the user already has {@link perUser} uploads in progress. */
  async acquire(userId: string): Promise<BatchUploadLease | undefined> {
    const key = `${this.#prefix}:batch-uploads:${userId}`;
    const id = randomUUID();
    const now = Date.now();
    const taken = await this.#redis.eval(
      ACQUIRE,
      1,
      key,
      now,
      now + this.#leaseMs,
      this.perUser,
      id,
      this.#leaseMs * 2,
    );
    if (taken !== 1) return undefined;
    const renew = setInterval(() => {
      this.#redis.eval(REFRESH, 1, key, Date.now() + this.#leaseMs, id, this.#leaseMs * 2).catch(() => {});
    }, this.#leaseMs / 3);
    renew.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        await this.#redis.zrem(key, id);
      },
    };
  }
}
