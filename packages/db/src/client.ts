import { PrismaPg } from "@prisma/adapter-pg";
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

/**
 * Creates the Prisma client. It runs engine-free through the `pg` driver adapter,
 * so no Prisma engine binary is needed at run time.
 */
export function createPrismaClient(options: CreatePrismaClientOptions): Database {
  const { url, schema } = parseDatabaseUrl(options.connectionString);
  const adapter = new PrismaPg(
    {
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      // Raw queries resolve unqualified names through the search_path.
      ...(schema === undefined ? {} : { options: `-c search_path="${schema}"` }),
    },
    schema === undefined ? undefined : { schema },
  );
  return new PrismaClient({ adapter });
}
