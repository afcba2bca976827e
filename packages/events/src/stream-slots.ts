import type { Redis } from "ioredis";

/** Options for {@link StreamSlots}. */
export interface StreamSlotsOptions {
  /** A producer connection (fails fast while Redis is down). */
  redis: Redis;
  /** The queue prefix; keys are `<prefix>:<scope>:<user id>`. */
  prefix: string;
  /**
   * What the slots count, as a key segment: another scope is another budget.
   * @defaultValue "events:slots" (live event streams)
   */
  scope?: string;
  /** Open streams one user may hold across every API process. */
  perUser: number;
  /**
   * A slot lapses this long after it was taken or last renewed, so the slots of a
   * process that died (no release) free themselves. Holders renew every third of it.
   * @defaultValue 60000
   */
  leaseMs?: number;
}

/**
 * Takes a slot when the user has fewer than ARGV[2] live ones. A slot is a member of
 * the user's sorted set scored by when it lapses; lapsed members are dropped first.
 * KEYS[1] the set; ARGV: now, limit, slot id, lease ms. Returns 1 when taken, else 0.
 */
const ACQUIRE_SCRIPT = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`;

/** Extends a held slot. KEYS[1] the set; ARGV: now, slot id, lease ms. */
const RENEW_SCRIPT = `
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

/**
 * Counts each user's open live-event streams across every API process, in Redis.
 * A slot is a lease: its holder renews it while the stream is open and releases it
 * when the stream ends; a crashed process's slots lapse after `leaseMs`, so none
 * leaks for good. Lease times come from the API process's clock, so API hosts are
 * expected to keep their clocks within a few seconds of each other.
 */
export class StreamSlots {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #scope: string;
  readonly perUser: number;
  readonly leaseMs: number;

  constructor(options: StreamSlotsOptions) {
    if (!Number.isInteger(options.perUser) || options.perUser < 1) {
      throw new RangeError(`perUser must be a positive integer, got ${options.perUser}`);
    }
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#scope = options.scope ?? "events:slots";
    this.perUser = options.perUser;
    this.leaseMs = options.leaseMs ?? 60_000;
  }

  #key(userId: string): string {
    return `${this.#prefix}:${this.#scope}:${userId}`;
  }

  /** Takes one of the user's slots for `slotId`; false when the user holds `perUser` already. */
  async acquire(userId: string, slotId: string): Promise<boolean> {
    const taken = await this.#redis.eval(
      ACQUIRE_SCRIPT,
      1,
      this.#key(userId),
      Date.now(),
      this.perUser,
      slotId,
      this.leaseMs,
    );
    return taken === 1;
  }

  /** Keeps `slotId` from lapsing for another lease. */
  async renew(userId: string, slotId: string): Promise<void> {
    await this.#redis.eval(RENEW_SCRIPT, 1, this.#key(userId), Date.now(), slotId, this.leaseMs);
  }

  /** Gives `slotId` back. */
  async release(userId: string, slotId: string): Promise<void> {
    await this.#redis.zrem(this.#key(userId), slotId);
  }

  /** The user's live slots (for tests and diagnostics). */
  async count(userId: string): Promise<number> {
    return this.#redis.zcount(this.#key(userId), Date.now(), "+inf");
  }
}
