import { type RouterCatalog, type Routing, readRouterCatalog, routingFromCatalog } from "@genq/providers";
import type { Redis } from "ioredis";

/** The published catalog and the routing built from it (undefined when it carries no prices). */
export interface CatalogSnapshot {
  catalog: RouterCatalog;
  routing: Routing | undefined;
}

/** Options for {@link RouterCatalogCache}. */
export interface RouterCatalogCacheOptions {
  redis: Redis;
  /** The queues' key prefix, under which the workers publish. */
  prefix: string;
  /**
   * How long a catalog read from Redis is used before it is read again (a worker's
   * reload reaches submissions within this). A missing catalog is not kept.
   * @defaultValue 1000
   */
  ttlMs?: number;
}

/**
 * The router catalog the workers publish, read at most once per `ttlMs` by this
 * process: every submission plans its job with it, and reading and parsing it each
 * time would cost more than the rest of the plan.
 */
export class RouterCatalogCache {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  #current: { snapshot: CatalogSnapshot; readAt: number } | undefined;
  #reading: Promise<CatalogSnapshot | undefined> | undefined;

  constructor(options: RouterCatalogCacheOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#ttlMs = options.ttlMs ?? 1_000;
  }

  /** The current catalog, or undefined when none is published or Redis cannot be read. */
  async get(): Promise<CatalogSnapshot | undefined> {
    const current = this.#current;
    if (current !== undefined && Date.now() - current.readAt < this.#ttlMs) return current.snapshot;
    // Concurrent submissions share one read.
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #read(): Promise<CatalogSnapshot | undefined> {
    const catalog = await readRouterCatalog(this.#redis, this.#prefix).catch(() => undefined);
    if (catalog === undefined) {
      this.#current = undefined;
      return undefined;
    }
    const previous = this.#current?.snapshot;
    // The same publication builds the same routing: keep it.
    const snapshot =
      previous !== undefined && previous.catalog.publishedAt === catalog.publishedAt
        ? previous
        : { catalog, routing: routingFromCatalog(catalog) };
    this.#current = { snapshot, readAt: Date.now() };
    return snapshot;
  }
}
