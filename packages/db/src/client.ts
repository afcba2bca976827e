import { PrismaPg } from "@prisma/adapter-pg";
import { parseDatabaseUrl } from "./connection-url.ts";
import { PrismaClient } from "./generated/prisma/client.ts";

/** Options for {@link createPrismaClient}. */
export interface CreatePrismaClientOptions {
  /** A PostgreSQL URL; `?schema=name` selects a schema other than `public`. */
  connectionString: string;
  /** Pool size per process. */
  maxConnections?: number;
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
      // Raw queries resolve unqualified names through the search_path.
      ...(schema === undefined ? {} : { options: `-c search_path="${schema}"` }),
    },
    schema === undefined ? undefined : { schema },
  );
  return new PrismaClient({ adapter });
}
