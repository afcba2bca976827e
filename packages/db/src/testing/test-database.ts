import { randomBytes } from "node:crypto";
import pg from "pg";
import { parseDatabaseUrl } from "../connection-url.ts";
import { migrate } from "../migrate.ts";
import { withSchemaUrl } from "./schema-url.ts";

/** A freshly migrated, uniquely named schema for one test file or test. */
export interface TestDatabase {
  /** The schema's name, `t_<random hex>`. */
  schema: string;
  /** A connection URL pointed at {@link TestDatabase.schema} (see {@link withSchemaUrl}). */
  url: string;
  /** Drops the schema and everything in it. Safe to call more than once. */
  drop(): Promise<void>;
}

/** Options for {@link createTestDatabase}. */
export interface CreateTestDatabaseOptions {
  /**
   * The database to create the schema in; defaults to `DATABASE_URL`, then to the
   * local `test` database.
   */
  baseUrl?: string;
}

/**
 * Creates a schema with a random name and applies every migration to it, so tests
 * run against the real tables while sharing one Postgres database with other tests
 * and other people. Call `drop()` in `afterAll`/`afterEach`.
 *
 * @example
 * ```ts
 * const database = await createTestDatabase();
 * const prisma = createPrismaClient({ connectionString: database.url });
 * afterAll(async () => { await prisma.$disconnect(); await database.drop(); });
 * ```
 */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  // Tests are the one place where reading the environment here is the point:
  // CI and developers pick the database without touching every test file.
  const baseUrl = options.baseUrl ?? process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";
  const schema = `t_${randomBytes(8).toString("hex")}`;
  const drop = () => dropSchema(baseUrl, schema);
  try {
    await migrate({ connectionString: baseUrl, schema });
  } catch (error) {
    // A half-made schema would otherwise be left behind with nobody holding its name.
    await drop().catch(() => {});
    throw error;
  }
  return { schema, url: withSchemaUrl(baseUrl, schema), drop };
}

async function dropSchema(baseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: parseDatabaseUrl(baseUrl).url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}
