import type { Redis } from "ioredis";

/**
 * Takes a slot for one holder in both sorted sets (the tenant's and the target's),
 * or none when either is full. Members score their lease end (Redis time, ms), so
 * a slot whose worker died frees itself when its lease ends.
 * KEYS: tenant set, target set. ARGV: holder, lease ms, tenant limit, target limit.
 */
const ACQUIRE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('PEXPIRE', KEYS[2], lease)
return 1
`;

/** Options for {@link WebhookSlots}. */
export interface WebhookSlotsOptions {
  redis: Redis;
  /** Key prefix (the queue prefix): deployments sharing a Redis do not share slots. */
  prefix: string;
  /** Deliveries of one tenant (user) at once, across every process. */
  perTenant: number;
  /** Deliveries to one endpoint (or per-request host) at once, across every process. */
  perTarget: number;
  /** How long a slot lasts when its holder never gives it back (it died). */
  leaseMs: number;
}

/**
 * Delivery slots per tenant and per target, shared by every webhook worker
 * through Redis: a tarpit endpoint (it accepts the connection and never answers)
 * holds at most `perTarget` deliveries, a tenant with many of them at most
 * `perTenant`; the remaining worker concurrency serves everyone else.
 */
export class WebhookSlots {
  readonly #options: WebhookSlotsOptions;

  constructor(options: WebhookSlotsOptions) {
    for (const name of ["perTenant", "perTarget", "leaseMs"] as const) {
      if (!Number.isInteger(options[name]) || options[name] < 1) {
        throw new RangeError(`${name} must be a positive integer, got ${options[name]}`);
      }
    }
    this.#options = options;
  }

  #keys(userId: string, target: string): [string, string] {
    // One hash tag per tenant: both keys of a script live on one cluster slot.
    const base = `${this.#options.prefix}:webhook-slots:{${userId}}`;
    return [`${base}:tenant`, `${base}:target:${target}`];
  }

  /** Takes a slot for `holder` (a queue job id); false when the tenant or the target is full. */
  async acquire(userId: string, target: string, holder: string): Promise<boolean> {
    const { redis, leaseMs, perTenant, perTarget } = this.#options;
    const taken = await redis.eval(
      ACQUIRE,
      2,
      ...this.#keys(userId, target),
      holder,
      leaseMs,
      perTenant,
      perTarget,
    );
    return taken === 1;
  }

  /** Gives the slot back. */
  async release(userId: string, target: string, holder: string): Promise<void> {
    const [tenant, targetKey] = this.#keys(userId, target);
    await this.#options.redis.multi().zrem(tenant, holder).zrem(targetKey, holder).exec();
  }
}
