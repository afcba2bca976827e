import { fingerprint } from "@genq/core";
import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";

/** What a cached text generation holds: enough to complete a job without calling a provider. */
export interface CachedTextResult {
  text: string;
  finishReason: string;
  provider: string;
  model: string;
  /** The job that produced it (the one that paid for it). */
  sourceJobId: string;
  /** The owner of that job: its id is shown only to them (absent in entries written before scoping). */
  sourceUserId?: string | undefined;
  cachedAt: string;
}

/** Options for {@link ResultCache}. */
export interface ResultCacheOptions {
  /** A connection for GET/SET; the cache never blocks on it for long (failures read as misses). */
  redis: Redis;
  /** A second connection for the clear broadcast; absent: this process's LRU is cleared only locally. */
  subscriber?: Redis | undefined;
  /** Redis key prefix (the queue prefix), so deployments and tests stay apart. */
  prefix: string;
  /** Entries kept in this process. Default 1,000. */
  maxEntries?: number;
  /** How long a text result stays cached. Default 24 h. */
  textTtlMs?: number;
  /**
   * Who may be served an entry: `user` (default) keys entries by the requesting user,
   * so one tenant's answers never reach another; `shared` lets every user hit every
   * entry (an operator's choice: a hit then tells a user that someone asked the same).
   */
  scope?: ResultCacheScope | undefined;
}

/** Who shares cached results; see {@link ResultCacheOptions.scope}. */
export type ResultCacheScope = "user" | "shared";

/** The parts of a text request that decide its output; everything else (metadata, priority) is left out. */
export interface CacheableTextRequest {
  /** The requesting user; part of the key unless the cache is shared. */
  userId: string;
  provider: string;
  model: string;
  messages: unknown;
  parameters: Record<string, unknown>;
}

/**
 * Results of deterministic requests, keyed by a hash of the normalized request:
 * an in-process LRU in front of Redis, so every worker shares hits. A hit costs
 * nothing and is charged nothing. Clearing deletes the Redis entries and tells
 * every process (pub/sub) to drop its LRU.
 */
export class ResultCache {
  readonly #redis: Redis;
  readonly #subscriber: Redis | undefined;
  readonly #prefix: string;
  readonly #textTtlMs: number;
  readonly #scope: ResultCacheScope;
  readonly #local: LRUCache<string, CachedTextResult>;
  #listening: Promise<void> | undefined;

  constructor(options: ResultCacheOptions) {
    this.#redis = options.redis;
    this.#subscriber = options.subscriber;
    this.#prefix = options.prefix;
    this.#textTtlMs = options.textTtlMs ?? 24 * 3_600_000;
    this.#scope = options.scope ?? "user";
    this.#local = new LRUCache({ max: options.maxEntries ?? 1_000, ttl: this.#textTtlMs });
  }

  /** The channel clear requests travel on. */
  get #channel(): string {
    return `${this.#prefix}:cache:clear`;
  }

  /** Subscribes to clear requests from other processes (idempotent). */
  listen(): Promise<void> {
    const subscriber = this.#subscriber;
    if (subscriber === undefined) return Promise.resolve();
    this.#listening ??= subscriber.subscribe(this.#channel).then(() => {
      subscriber.on("message", (channel: string) => {
        if (channel === this.#channel) this.#local.clear();
      });
    });
    return this.#listening;
  }

  /** Who shares entries. */
  get scope(): ResultCacheScope {
    return this.#scope;
  }

  /** The cache key of a request: sha256 over its canonical JSON (without the user when shared). */
  textKey(request: CacheableTextRequest): string {
    const { userId, ...rest } = request;
    const scoped = this.#scope === "shared" ? rest : { ...rest, userId };
    return `${this.#prefix}:cache:text:${fingerprint(scoped)}`;
  }

  /** A cached result, or undefined on a miss (or when Redis cannot answer). */
  async getText(key: string): Promise<CachedTextResult | undefined> {
    const local = this.#local.get(key);
    if (local !== undefined) return local;
    const stored = await this.#redis.get(key).catch(() => null);
    if (stored === null) return undefined;
    try {
      const value = JSON.parse(stored) as CachedTextResult;
      this.#local.set(key, value);
      return value;
    } catch {
      return undefined;
    }
  }

  /** Stores a result; a failure only loses the cache entry. */
  async setText(key: string, value: CachedTextResult): Promise<void> {
    this.#local.set(key, value);
    await this.#redis.set(key, JSON.stringify(value), "PX", this.#textTtlMs).catch(() => {});
  }

  /** Deletes every cached result of this prefix and tells every process to drop its LRU; returns how many Redis entries went. */
  async clear(): Promise<number> {
    this.#local.clear();
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, keys] = await this.#redis.scan(
        cursor,
        "MATCH",
        `${this.#prefix}:cache:text:*`,
        "COUNT",
        1_000,
      );
      cursor = next;
      if (keys.length > 0) deleted += await this.#redis.del(...keys);
    } while (cursor !== "0");
    await this.#redis.publish(this.#channel, "clear");
    return deleted;
  }

  /** Stops listening (the caller owns the connections). */
  async close(): Promise<void> {
    if (this.#listening !== undefined) await this.#subscriber?.unsubscribe(this.#channel).catch(() => {});
  }
}

/** Sends a clear request from a process that has no cache of its own (the API). */
export async function clearResultCache(redis: Redis, prefix: string): Promise<number> {
  return new ResultCache({ redis, prefix, maxEntries: 1 }).clear();
}
