import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { parseDatabaseUrl } from "./connection-url.ts";
import { PrismaClient } from "./generated/prisma/client.ts";

/** Options for {@link createPrismaClient}. */
export interface CreatePrismaClientOptions {
  /** A PostgreSQL URL; `?schema=name` selects a schema other than `public`. */
  connectionString: string;
  /** Pool size per process. @defaultValue 10 */
  maxConnections?: number;
  /**
   * How long a query waits for a free pooled connection (or a new one to open)
   * before it fails, in ms; the API answers that failure 503 with Retry-After, so
   * an exhausted pool never hangs requests. 0 waits forever.
   * @defaultValue 10000
   */
  connectionTimeoutMs?: number;
}

/** The Prisma client type genq uses. */
export type Database = InstanceType<typeof PrismaClient>;

/** The `pg` pool under each client {@link createPrismaClient} made. */
const pools = new WeakMap<Database, pg.Pool>();

/**
 * Creates the Prisma client. It runs engine-free through the `pg` driver adapter,
 * so no Prisma engine binary is needed at run time. The adapter runs on a pool this
 * function creates, which {@link sqlPool} returns: the lifecycle's hot-path SQL runs on
 * the same connections as Prisma (one pool per process, one size to configure).
 */
export function createPrismaClient(options: CreatePrismaClientOptions): Database {
  const { url, schema } = parseDatabaseUrl(options.connectionString);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    // Raw queries resolve unqualified names through the search_path.
    ...(schema === undefined ? {} : { options: `-c search_path="${schema}"` }),
  });
  const adapter = new PrismaPg(pool, {
    disposeExternalPool: true,
    ...(schema === undefined ? {} : { schema }),
  });
  const db = new PrismaClient({ adapter });
  pools.set(db, pool);
  return db;
}

/**
 * The `pg` pool a client from {@link createPrismaClient} runs on, for SQL that goes
 * around the ORM (the job lifecycle's hot path). Its queries resolve unqualified
 * names in the client's schema.
 */
export function sqlPool(db: Database): pg.Pool {
  const pool = pools.get(db);
  if (pool === undefined) throw new TypeError("sqlPool: this client was not made by createPrismaClient");
  return pool;
}
