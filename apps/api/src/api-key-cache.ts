import { createHash } from "node:crypto";
import type { Server } from "node:http";
import type { Principal } from "@genq/db";
import { apiKeyInvalidationChannel } from "@genq/queue";
import type { FastifyBaseLogger } from "fastify";
import type { Redis } from "ioredis";

/** What an invalidation names: one key (revoked), or every key of a user (disabled, plan changed). */
export interface ApiKeyInvalidation {
  apiKeyId?: string;
  userId?: string;
}

/** Options for {@link ApiKeyCache}. */
export interface ApiKeyCacheOptions {
  /** A connection to duplicate for the subscription (the API's producer connection). */
  redis: Redis;
  /** The queue prefix: API processes of one deployment share the invalidation channel. */
  prefix: string;
  /**
   * How long a resolved key is trusted without asking Postgres; 0 turns the cache off
   * (invalidations are still received, for {@link ApiKeyCache.onInvalidation}).
   */
  ttlMs: number;
  /** Keys kept at most; the oldest entry goes first. Default 10,000. */
  maxEntries?: number;
  log?: FastifyBaseLogger;
}

/** The cache serving each HTTP server (an app), so that its own admin routes evict it at once. */
const cachesByServer = new WeakMap<Server, ApiKeyCache>();

/** Told of every invalidation this process receives (its own and other processes'). */
export type ApiKeyInvalidationListener = (target: ApiKeyInvalidation) => void;

/**
 * A short-lived, per-process cache of resolved API keys, so the submit hot path
 * skips the Postgres lookup. Correctness comes from invalidation, not the TTL:
 * revoking a key or changing its user is broadcast over Redis pub/sub and evicts
 * it in every API process. While the subscription is down (Redis restarting) the
 * cache is bypassed and emptied, because an invalidation may be missed then; the
 * TTL bounds staleness only for changes made outside the API (the CLI). Listeners
 * ({@link ApiKeyCache.onInvalidation}) hear every invalidation, so open live-event
 * streams can end when their key is revoked.
 */
export class ApiKeyCache {
  readonly #entries = new Map<string, { principal: Principal; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #channel: string;
  readonly #subscriber: Redis;
  /** Set after the first subscription: a later one follows a gap in which invalidations were lost. */
  #subscribedBefore = false;
  readonly #log: FastifyBaseLogger | undefined;
  readonly #listeners = new Set<ApiKeyInvalidationListener>();
  /** Bumped by every invalidation: a lookup that raced one does not fill the cache. */
  #generation = 0;
  #live = false;

  constructor(options: ApiKeyCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#channel = apiKeyInvalidationChannel(options.prefix);
    this.#log = options.log;
    // Subscribed even without caching: open live-event streams end on a revocation.
    const subscriber = options.redis.duplicate({ connectionName: "genq-api-key-cache" });
    this.#subscriber = subscriber;
    subscriber.on("error", () => {}); // reported through the producer connection and /health/ready
    subscriber.on("message", (channel: string, message: string) => {
      if (channel === this.#channel) this.invalidate(parseInvalidation(message));
    });
    subscriber.on("ready", () => void this.#subscribe());
    for (const event of ["close", "end", "reconnecting"]) {
      subscriber.on(event, () => {
        this.#live = false;
        this.#clear();
      });
    }
  }

  /** Waits (at most `timeoutMs`) until invalidations are received; until then every lookup asks Postgres. */
  async ready(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#live && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#channel);
      this.#clear(); // whatever was cached before the (re)subscription may have missed an eviction
      this.#live = true;
      // Invalidations sent while the subscription was down are lost: listeners check everything.
      if (this.#subscribedBefore) this.#notify({});
      this.#subscribedBefore = true;
    } catch (error) {
      this.#log?.warn({ err: error }, "API key cache: could not subscribe to invalidations; cache bypassed");
    }
  }

  /** Serves this app's own admin routes (see {@link publishApiKeyInvalidation}). */
  attach(server: Server): void {
    cachesByServer.set(server, this);
  }

  /** The principal of `secret`: from the cache, or from `load` (Postgres), cached when active. */
  async resolve(secret: string, load: () => Promise<Principal | null>): Promise<Principal | null> {
    if (!this.#live || this.#ttlMs <= 0) return load();
    const hash = createHash("sha256").update(secret).digest("base64url");
    const now = Date.now();
    const hit = this.#entries.get(hash);
    if (hit !== undefined && hit.expiresAt > now) return { ...hit.principal };
    if (hit !== undefined) this.#entries.delete(hash);
    const generation = this.#generation;
    const principal = await load();
    if (principal !== null && this.#live && generation === this.#generation) {
      if (this.#entries.size >= this.#maxEntries) {
        const oldest = this.#entries.keys().next();
        if (oldest.done !== true) this.#entries.delete(oldest.value);
      }
      this.#entries.set(hash, { principal: { ...principal }, expiresAt: now + this.#ttlMs });
    }
    return principal;
  }

  /**
   * Calls `listener` with every invalidation from now on (a revoked key, a changed or
   * disabled user, or `{}` for "anything may have changed"); returns its removal.
   */
  onInvalidation(listener: ApiKeyInvalidationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Evicts the keys `target` names (every key when it names nothing), and tells the listeners. */
  invalidate(target: ApiKeyInvalidation): void {
    this.#notify(target);
    this.#generation += 1;
    if (target.apiKeyId === undefined && target.userId === undefined) {
      this.#clear();
      return;
    }
    for (const [hash, { principal }] of this.#entries) {
      if (principal.apiKeyId === target.apiKeyId || principal.userId === target.userId)
        this.#entries.delete(hash);
    }
  }

  #notify(target: ApiKeyInvalidation): void {
    for (const listener of this.#listeners) {
      try {
        listener(target);
      } catch (error) {
        this.#log?.warn({ err: error }, "API key invalidation listener failed");
      }
    }
  }

  #clear(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  async close(): Promise<void> {
    this.#live = false;
    this.#listeners.clear();
    this.#clear();
    this.#subscriber.disconnect();
  }
}

function parseInvalidation(message: string): ApiKeyInvalidation {
  try {
    const parsed = JSON.parse(message) as Record<string, unknown>;
    return {
      ...(typeof parsed.apiKeyId === "string" ? { apiKeyId: parsed.apiKeyId } : {}),
      ...(typeof parsed.userId === "string" ? { userId: parsed.userId } : {}),
    };
  } catch {
    return {}; // unreadable: evict everything, the safe side
  }
}

/** The cache of the app listening on `server`, once its API-key auth is registered. */
export function apiKeyCacheOf(server: Server): ApiKeyCache | undefined {
  return cachesByServer.get(server);
}

/**
 * Announces a revoked key or a changed user to every API process: this app's
 * cache is evicted before this resolves, the others' as soon as Redis delivers the
 * message. A failed publish is logged; other processes then hold the key for at
 * most their TTL (their subscription is down as well when Redis is).
 */
export async function publishApiKeyInvalidation(
  context: { server: Server; redis: Redis; prefix: string; log?: FastifyBaseLogger },
  target: ApiKeyInvalidation,
): Promise<void> {
  cachesByServer.get(context.server)?.invalidate(target);
  try {
    await context.redis.publish(apiKeyInvalidationChannel(context.prefix), JSON.stringify(target));
  } catch (error) {
    context.log?.warn({ err: error, ...target }, "could not broadcast an API key invalidation");
  }
}
