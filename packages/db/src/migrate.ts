import { createHash, randomUUID } from "node:crypto";
import type { Dirent } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { parseDatabaseUrl } from "./connection-url.ts";

/**
 * Absolute path of the repository's `prisma/migrations` folder, the one
 * `prisma migrate dev` writes to. Resolved from this file so it does not depend on
 * the working directory the CLI or a test runs in.
 */
export const DEFAULT_MIGRATIONS_DIR: string = fileURLToPath(
  new URL("../../../prisma/migrations", import.meta.url),
);

/**
 * The advisory lock key `prisma migrate` itself takes. Sharing it means this runner,
 * another instance of it and a real `prisma migrate deploy` all serialize against
 * each other on the same database.
 */
const MIGRATION_ADVISORY_LOCK_KEY = "72707369";

/** The file inside each migration folder holding its SQL. */
const MIGRATION_SCRIPT_FILE = "migration.sql";

/**
 * The migration table exactly as Prisma's Postgres connector creates it, so that
 * `prisma migrate status`/`deploy` can later take over a database migrated here.
 */
const CREATE_MIGRATIONS_TABLE_SQL = `CREATE TABLE _prisma_migrations (
    id                  VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum            VARCHAR(64) NOT NULL,
    finished_at         TIMESTAMPTZ,
    migration_name      VARCHAR(255) NOT NULL,
    logs                TEXT,
    rolled_back_at      TIMESTAMPTZ,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
);`;

/** The logger {@link migrate} reports progress to; a pino logger fits. */
export interface MigrateLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options for {@link migrate}. */
export interface MigrateOptions {
  /**
   * A PostgreSQL URL. A `?schema=name` parameter (Prisma's convention) is honoured
   * when {@link MigrateOptions.schema} is not given.
   */
  connectionString: string;
  /**
   * The schema to migrate; it is created when missing, and the tables, enums and
   * `_prisma_migrations` all live in it. Without it, objects go wherever the
   * connection's search_path points (normally `public`).
   */
  schema?: string;
  /** The folder holding one sub-folder per migration; {@link DEFAULT_MIGRATIONS_DIR} by default. */
  migrationsDir?: string;
  /** Receives progress (info) and edited-migration warnings; warnings go to the console without it. */
  logger?: MigrateLogger;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Migrations applied by this call, in order. */
  applied: string[];
  /** Migrations found in the folder that were already applied before this call. */
  alreadyApplied: string[];
}

/**
 * Thrown when a migration cannot be applied, or when an earlier failure blocks
 * applying any. `migrationName` names the migration at fault.
 */
export class MigrationError extends Error {
  /** The migration folder name the error is about. */
  readonly migrationName: string;

  constructor(migrationName: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
    this.migrationName = migrationName;
  }
}

/** A migration folder read from disk. */
interface MigrationFile {
  name: string;
  script: string;
  checksum: string;
}

/** A row of `_prisma_migrations`, as far as this runner needs it. */
interface MigrationRow {
  migration_name: string;
  checksum: string;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/** Warnings must not vanish when the caller passes no logger; progress may. */
const defaultLogger: MigrateLogger = {
  info() {},
  warn(obj, msg) {
    console.warn(msg ?? "migrate warning", obj);
  },
};

/**
 * Applies the pending migrations of `prisma/migrations` the way
 * `prisma migrate deploy` does, recording them in `_prisma_migrations` with the
 * same rows, so the two are interchangeable. Prisma's schema engine is not
 * available everywhere genq runs; this needs only `pg`.
 *
 * Each migration runs in its own transaction, so a failing one leaves no partial
 * schema behind, only its `_prisma_migrations` row with `finished_at` NULL and the
 * error in `logs`; later runs refuse to continue until that row is resolved.
 * Concurrent calls against one database serialize on an advisory lock.
 *
 * @example
 * ```ts
 * const { applied } = await migrate({ connectionString: env.DATABASE_URL, logger });
 * ```
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const logger = options.logger ?? defaultLogger;
  const migrationsDir = options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  const { url, schema: urlSchema } = parseDatabaseUrl(options.connectionString);
  const schema = options.schema ?? urlSchema;
  // Read the folder before connecting: a missing or malformed folder is the
  // caller's mistake and should not cost a database round trip.
  const migrations = await readMigrations(migrationsDir);

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let locked = false;
  try {
    // Lock before anything else: even CREATE SCHEMA IF NOT EXISTS fails with a
    // unique violation when two sessions race on it.
    await client.query(`SELECT pg_advisory_lock(${MIGRATION_ADVISORY_LOCK_KEY})`);
    locked = true;
    if (schema !== undefined) {
      const quoted = client.escapeIdentifier(schema);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
      await client.query(`SET search_path TO ${quoted}`);
    }
    await ensureMigrationsTable(client);

    const rows = await readMigrationRows(client);
    const failed = rows.find((row) => row.finished_at === null && row.rolled_back_at === null);
    if (failed !== undefined) throw failedMigrationError(failed);

    const appliedRows = new Map<string, MigrationRow>();
    for (const row of rows) {
      if (row.finished_at !== null && row.rolled_back_at === null) appliedRows.set(row.migration_name, row);
    }

    const result: MigrateResult = { applied: [], alreadyApplied: [] };
    for (const migration of migrations) {
      const existing = appliedRows.get(migration.name);
      if (existing === undefined) {
        await applyMigration(client, migration, logger);
        result.applied.push(migration.name);
        continue;
      }
      result.alreadyApplied.push(migration.name);
      if (existing.checksum !== migration.checksum) {
        // `prisma migrate deploy` only warns here too: the database already has
        // whatever the migration did, and re-running it is never right.
        logger.warn(
          {
            migration: migration.name,
            recordedChecksum: existing.checksum,
            fileChecksum: migration.checksum,
          },
          `migration ${migration.name} was modified after it was applied`,
        );
      }
    }
    if (result.applied.length === 0) logger.info({ schema }, "database is up to date; no migration applied");
    return result;
  } finally {
    if (locked) {
      // A broken connection cannot unlock, but ending the session releases the
      // lock anyway, so the original error is the one worth surfacing.
      await client.query(`SELECT pg_advisory_unlock(${MIGRATION_ADVISORY_LOCK_KEY})`).catch(() => {});
    }
    await client.end().catch(() => {});
  }
}

/** Reads every migration folder, sorted by name as Prisma orders them. */
async function readMigrations(migrationsDir: string): Promise<MigrationFile[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(migrationsDir, { withFileTypes: true });
  } catch (error) {
    throw new Error(`cannot read the migrations folder ${migrationsDir}`, { cause: error });
  }
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrations: MigrationFile[] = [];
  for (const name of names) {
    const path = join(migrationsDir, name, MIGRATION_SCRIPT_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new MigrationError(name, `migration ${name} has no readable ${MIGRATION_SCRIPT_FILE} (${path})`, {
        cause: error,
      });
    }
    // Prisma hashes the script exactly as stored, so hash bytes, not a re-encoding.
    migrations.push({
      name,
      script: bytes.toString("utf8"),
      checksum: createHash("sha256").update(bytes).digest("hex"),
    });
  }
  return migrations;
}

/** Creates `_prisma_migrations` in the current schema unless it is already there. */
async function ensureMigrationsTable(client: pg.Client): Promise<void> {
  // Look in current_schema() only: to_regclass would also find a table of that
  // name further down the search_path, in a schema this run does not migrate.
  const { rowCount } = await client.query(
    `SELECT 1 FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_name = '_prisma_migrations'`,
  );
  if (rowCount === 0) await client.query(CREATE_MIGRATIONS_TABLE_SQL);
}

async function readMigrationRows(client: pg.Client): Promise<MigrationRow[]> {
  const { rows } = await client.query<MigrationRow>(
    `SELECT migration_name, checksum, started_at, finished_at, rolled_back_at
       FROM _prisma_migrations
      ORDER BY started_at, migration_name`,
  );
  return rows;
}

/** The same situation as Prisma's P3009, with the ways out spelled out. */
function failedMigrationError(row: MigrationRow): MigrationError {
  return new MigrationError(
    row.migration_name,
    [
      `found a failed migration in the target database, so no new migration will be applied: ` +
        `${row.migration_name} (started at ${row.started_at.toISOString()}) did not finish.`,
      "Its transaction was rolled back, so none of its changes are in the database; the error is in",
      `_prisma_migrations.logs. Fix the migration, then mark the failed attempt as rolled back with`,
      `\`prisma migrate resolve --rolled-back ${row.migration_name}\` or`,
      `UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '${row.migration_name}' AND finished_at IS NULL;`,
      "and run the migration again. See https://pris.ly/d/migrate-resolve",
    ].join("\n"),
  );
}

/** Applies one migration in a transaction and records it as Prisma does. */
async function applyMigration(
  client: pg.Client,
  migration: MigrationFile,
  logger: MigrateLogger,
): Promise<void> {
  const id = randomUUID();
  // The row is written outside the migration's transaction on purpose: when the
  // migration fails, the row must survive the rollback to block later runs.
  await client.query(
    `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), 0)`,
    [id, migration.checksum, migration.name],
  );
  logger.info({ migration: migration.name }, "applying migration");
  try {
    await client.query("BEGIN");
    // No parameters, so pg sends the simple query protocol, which accepts a
    // script of many statements.
    await client.query(migration.script);
    // Marked finished inside the same transaction: a crash can then never leave an
    // applied migration recorded as failed (or a failed one recorded as applied).
    await client.query(
      "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = $1",
      [id],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    const logs = describeDatabaseError(error);
    await client
      .query("UPDATE _prisma_migrations SET logs = $2 WHERE id = $1", [id, logs])
      // Recording is best effort: losing the log must not hide the real error.
      .catch(() => {});
    throw new MigrationError(migration.name, `migration ${migration.name} failed to apply: ${logs}`, {
      cause: error,
    });
  }
  logger.info({ migration: migration.name }, "applied migration");
}

/** Formats a driver error like the text Prisma stores in `_prisma_migrations.logs`. */
function describeDatabaseError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const databaseError = error as Partial<pg.DatabaseError>;
  if (typeof databaseError.code !== "string") return error.message;
  const lines = [
    `Database error code: ${databaseError.code}`,
    "",
    "Database error:",
    `ERROR: ${error.message}`,
  ];
  if (databaseError.detail) lines.push(`DETAIL: ${databaseError.detail}`);
  if (databaseError.hint) lines.push(`HINT: ${databaseError.hint}`);
  if (databaseError.position) lines.push(`Position: ${databaseError.position}`);
  return lines.join("\n");
}
