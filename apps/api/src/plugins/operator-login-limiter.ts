import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** Limits on failed operator logins; every API process counts together, in Redis. */
export interface OperatorLoginLimits {
  /** Failed logins one client IP may make per window; then every attempt from it gets 429. @defaultValue 10 */
  maxFailuresPerIp?: number;
  /**
   * Failed logins one user name may collect per window (from all IPs); then attempts
   * for it get 429 from every IP that has failed before. A client with no failure
   * (the real operator elsewhere) still gets in with the right password. @defaultValue 100
   */
  maxFailuresPerUser?: number;
  /** The counting window, in milliseconds, from the first failure. @defaultValue 900000 (15 min) */
  windowMs?: number;
}

/** Options for {@link OperatorLoginLimiter}. */
export interface OperatorLoginLimiterOptions extends OperatorLoginLimits {
  redis: Redis;
  /** Key prefix (the queue prefix), so tests and deployments sharing a Redis count apart. */
  prefix: string;
}

const DEFAULTS = { maxFailuresPerIp: 10, maxFailuresPerUser: 100, windowMs: 15 * 60_000 };

/**
 * Counts failed operator (HTTP Basic) logins per client IP and per user name in
 * fixed windows shared through Redis, so guessing the password is limited however
 * many API processes answer. See {@link OperatorLoginLimits} for who is blocked.
 */
export class OperatorLoginLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #limits: Required<OperatorLoginLimits>;

  constructor(options: OperatorLoginLimiterOptions) {
    this.#redis = options.redis;
    this.#prefix = `${options.prefix}:operator-login`;
    this.#limits = {
      maxFailuresPerIp: options.maxFailuresPerIp ?? DEFAULTS.maxFailuresPerIp,
      maxFailuresPerUser: options.maxFailuresPerUser ?? DEFAULTS.maxFailuresPerUser,
      windowMs: options.windowMs ?? DEFAULTS.windowMs,
    };
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
    }
  }

  #ipKey(ip: string): string {
    return `${this.#prefix}:ip:${ip}`;
  }

  /** User names are hashed: any text can arrive in a Basic header. */
  #userKey(user: string): string {
    return `${this.#prefix}:user:${createHash("sha256").update(user).digest("hex").slice(0, 32)}`;
  }

  /** How long this client must wait before it may try again, or undefined when it may try now. */
  async retryAfterMs(ip: string, user: string): Promise<number | undefined> {
    const ipKey = this.#ipKey(ip);
    const userKey = this.#userKey(user);
    const results = await this.#redis.multi().get(ipKey).pttl(ipKey).get(userKey).pttl(userKey).exec();
    const [ipFailures, ipTtl, userFailures, userTtl] = (results ?? []).map(([, value]) => Number(value ?? 0));
    if ((ipFailures ?? 0) >= this.#limits.maxFailuresPerIp) return Math.max(1, ipTtl ?? 1);
    if ((userFailures ?? 0) >= this.#limits.maxFailuresPerUser && (ipFailures ?? 0) > 0) {
      return Math.max(1, userTtl ?? 1);
    }
    return undefined;
  }

  /** Counts one failed login of `user` from `ip`. */
  async recordFailure(ip: string, user: string): Promise<void> {
    const ipKey = this.#ipKey(ip);
    const userKey = this.#userKey(user);
    const windowMs = this.#limits.windowMs;
    await this.#redis
      .multi()
      .incr(ipKey)
      .pexpire(ipKey, windowMs, "NX")
      .incr(userKey)
      .pexpire(userKey, windowMs, "NX")
      .exec();
  }
}
