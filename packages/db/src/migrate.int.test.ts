import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_MIGRATIONS_DIR, type MigrateLogger, MigrationError, migrate } from "./migrate.ts";

const BASE_URL = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test";

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

/** Everything a test created, removed in afterEach even when the test fails. */
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A schema name nobody else uses; dropped after the test. */
function freshSchema(): string {
  const schema = `t_migrate_${randomBytes(6).toString("hex")}`;
  cleanups.push(async () => {
    await withClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  });
  return schema;
}

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function migrationRows(schema: string): Promise<MigrationRow[]> {
  return withClient(async (client) => {
    const { rows } = await client.query<MigrationRow>(
      `SELECT * FROM "${schema}"._prisma_migrations ORDER BY started_at, migration_name`,
    );
    return rows;
  });
}

function tableExists(schema: string, table: string): Promise<boolean> {
  return withClient(async (client) => {
    const { rows } = await client.query<{ exists: boolean }>("SELECT to_regclass($1) IS NOT NULL AS exists", [
      `"${schema}"."${table}"`,
    ]);
    return rows[0]?.exists ?? false;
  });
}

/** A throwaway migrations folder: `{ name: sql }`. */
async function migrationsFolder(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "genq-migrations-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  for (const [name, sql] of Object.entries(migrations)) await writeMigration(dir, name, sql);
  return dir;
}

async function writeMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, "migration.sql"), sql);
}

/** Captures what migrate() logs, to assert on warnings. */
function recordingLogger(): MigrateLogger & { warnings: { obj: object; msg: string | undefined }[] } {
  const warnings: { obj: object; msg: string | undefined }[] = [];
  return { warnings, info() {}, warn: (obj, msg) => warnings.push({ obj, msg }) };
}

async function repositoryMigrationNames(): Promise<string[]> {
  const entries = await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

describe("migrate", () => {
  it("applies every migration of prisma/migrations into a fresh schema", async () => {
    const schema = freshSchema();
    const names = await repositoryMigrationNames();
    expect(names.length).toBeGreaterThan(0);

    const result = await migrate({ connectionString: BASE_URL, schema });

    expect(result).toEqual({ applied: names, alreadyApplied: [] });
    expect(await tableExists(schema, "users")).toBe(true);
    expect(await tableExists(schema, "_prisma_migrations")).toBe(true);
  });

  it("records each migration as prisma migrate deploy does, with the file's sha256 as checksum", async () => {
    const schema = freshSchema();
    const names = await repositoryMigrationNames();

    await migrate({ connectionString: BASE_URL, schema });

    const rows = await migrationRows(schema);
    expect(rows.map((row) => row.migration_name)).toEqual(names);
    for (const row of rows) {
      const file = join(DEFAULT_MIGRATIONS_DIR, row.migration_name, "migration.sql");
      const nodeChecksum = createHash("sha256")
        .update(await readFile(file))
        .digest("hex");
      // An independent implementation, so a shared mistake in how bytes are hashed cannot hide.
      const coreutilsChecksum = execFileSync("sha256sum", [file], { encoding: "utf8" }).split(" ")[0];
      expect(row.checksum).toBe(nodeChecksum);
      expect(row.checksum).toBe(coreutilsChecksum);
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.applied_steps_count).toBe(1);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
    }
  });

  it("creates _prisma_migrations with Prisma's exact columns", async () => {
    const schema = freshSchema();
    await migrate({ connectionString: BASE_URL, schema });

    const columns = await withClient(async (client) => {
      const { rows } = await client.query<{
        column: string;
        type: string;
        nullable: boolean;
        default: string | null;
      }>(
        `SELECT a.attname::text AS column, format_type(a.atttypid, a.atttypmod) AS type,
                NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
           FROM pg_attribute a
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [`"${schema}"._prisma_migrations`],
      );
      return rows;
    });
    expect(columns).toEqual([
      { column: "id", type: "character varying(36)", nullable: false, default: null },
      { column: "checksum", type: "character varying(64)", nullable: false, default: null },
      { column: "finished_at", type: "timestamp with time zone", nullable: true, default: null },
      { column: "migration_name", type: "character varying(255)", nullable: false, default: null },
      { column: "logs", type: "text", nullable: true, default: null },
      { column: "rolled_back_at", type: "timestamp with time zone", nullable: true, default: null },
      { column: "started_at", type: "timestamp with time zone", nullable: false, default: "now()" },
      { column: "applied_steps_count", type: "integer", nullable: false, default: "0" },
    ]);
  });

  it("applies nothing when run again", async () => {
    const schema = freshSchema();
    const names = await repositoryMigrationNames();
    await migrate({ connectionString: BASE_URL, schema });
    const before = await migrationRows(schema);

    const second = await migrate({ connectionString: BASE_URL, schema });

    expect(second).toEqual({ applied: [], alreadyApplied: names });
    expect(await migrationRows(schema)).toEqual(before);
  });

  it("serializes two runs started at once, so each migration is applied and recorded exactly once", async () => {
    const schema = freshSchema();
    const names = await repositoryMigrationNames();

    const results = await Promise.all([
      migrate({ connectionString: BASE_URL, schema }),
      migrate({ connectionString: BASE_URL, schema }),
    ]);

    expect(results.flatMap((result) => result.applied).sort()).toEqual(names);
    for (const result of results) expect([...result.applied, ...result.alreadyApplied]).toEqual(names);
    const rows = await migrationRows(schema);
    expect(rows.map((row) => row.migration_name)).toEqual(names);
    expect(rows.every((row) => row.finished_at !== null && row.applied_steps_count === 1)).toBe(true);
  });

  it("takes the schema from Prisma's ?schema= URL parameter when no schema option is given", async () => {
    const schema = freshSchema();
    const url = new URL(BASE_URL);
    url.searchParams.set("schema", schema);

    const result = await migrate({ connectionString: url.toString() });

    expect(result.applied).toEqual(await repositoryMigrationNames());
    expect(await tableExists(schema, "jobs")).toBe(true);
  });

  it("applies only the migrations added since the last run, in name order", async () => {
    const schema = freshSchema();
    const dir = await migrationsFolder({ "0001_first": 'CREATE TABLE "first" ("id" INTEGER);' });
    await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir });
    await writeMigration(dir, "0003_third", 'ALTER TABLE "second" ADD COLUMN "note" TEXT;');
    await writeMigration(dir, "0002_second", 'CREATE TABLE "second" ("id" INTEGER);');

    const result = await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir });

    expect(result).toEqual({ applied: ["0002_second", "0003_third"], alreadyApplied: ["0001_first"] });
  });

  it("records a failing migration, rolls its changes back, and refuses to run until it is resolved", async () => {
    const schema = freshSchema();
    const dir = await migrationsFolder({
      "0001_good": 'CREATE TABLE "good" ("id" INTEGER);',
      "0002_broken": 'CREATE TABLE "half_done" ("id" INTEGER);\nCREATE TABLE "broken" ("id" INTEGR);',
      "0003_later": 'CREATE TABLE "later" ("id" INTEGER);',
    });

    const failure = await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir }).catch(
      (error: unknown) => error,
    );

    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).migrationName).toBe("0002_broken");
    expect((failure as Error).message).toContain("0002_broken");
    expect((failure as Error).message).toContain('type "integr" does not exist');
    const rows = await migrationRows(schema);
    expect(rows.map((row) => row.migration_name)).toEqual(["0001_good", "0002_broken"]);
    const broken = rows[1]!;
    expect(broken.finished_at).toBeNull();
    expect(broken.rolled_back_at).toBeNull();
    expect(broken.applied_steps_count).toBe(0);
    expect(broken.logs).toContain('type "integr" does not exist');
    expect(broken.logs).toContain("42704");
    // The migration ran in a transaction: its first statement left nothing behind.
    expect(await tableExists(schema, "good")).toBe(true);
    expect(await tableExists(schema, "half_done")).toBe(false);
    expect(await tableExists(schema, "later")).toBe(false);

    // Fixing the file is not enough: the failed attempt must be resolved first, as with Prisma's P3009.
    await writeMigration(dir, "0002_broken", 'CREATE TABLE "broken" ("id" INTEGER);');
    const refusal = await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir }).catch(
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(MigrationError);
    expect((refusal as Error).message).toMatch(/failed migration.*0002_broken/s);
    expect((refusal as Error).message).toContain("prisma migrate resolve --rolled-back 0002_broken");
    expect((await migrationRows(schema)).length).toBe(2);

    // Marking it rolled back, as `prisma migrate resolve --rolled-back` does, unblocks the next run.
    await withClient((client) =>
      client.query(
        `UPDATE "${schema}"._prisma_migrations SET rolled_back_at = now() WHERE migration_name = '0002_broken'`,
      ),
    );
    const retry = await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir });
    expect(retry).toEqual({ applied: ["0002_broken", "0003_later"], alreadyApplied: ["0001_good"] });
    const finalRows = await migrationRows(schema);
    expect(finalRows.filter((row) => row.migration_name === "0002_broken")).toHaveLength(2);
  });

  it("warns about an applied migration whose file changed, and carries on", async () => {
    const schema = freshSchema();
    const dir = await migrationsFolder({ "0001_first": 'CREATE TABLE "first" ("id" INTEGER);' });
    await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir });
    await writeMigration(dir, "0001_first", 'CREATE TABLE "first" ("id" BIGINT);');
    await writeMigration(dir, "0002_second", 'CREATE TABLE "second" ("id" INTEGER);');
    const logger = recordingLogger();

    const result = await migrate({ connectionString: BASE_URL, schema, migrationsDir: dir, logger });

    expect(result).toEqual({ applied: ["0002_second"], alreadyApplied: ["0001_first"] });
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.msg).toContain("0001_first");
    expect(logger.warnings[0]?.obj).toMatchObject({ migration: "0001_first" });
  });

  it("names the migration when its folder has no migration.sql", async () => {
    const schema = freshSchema();
    const dir = await migrationsFolder({ "0001_first": "SELECT 1;" });
    await mkdir(join(dir, "0002_empty"));

    await expect(migrate({ connectionString: BASE_URL, schema, migrationsDir: dir })).rejects.toThrow(
      /0002_empty.*migration\.sql/,
    );
  });
});
