import { redactUrl } from "@genq/core";
import pg from "pg";
import type { Database } from "./client.ts";
import { parseDatabaseUrl } from "./connection-url.ts";

/** Resolves when Postgres answers a trivial query; rejects otherwise. */
export async function pingDatabase(db: Database): Promise<void> {
  await db.$queryRawUnsafe("SELECT 1");
}

/**
 * Fails with an actionable message when Postgres cannot be reached at `url`.
 * Used at start-up so a missing database is reported in one line, not a stack trace.
 */
export async function assertDatabaseReachable(url: string, timeoutMs = 3_000): Promise<void> {
  const client = new pg.Client({
    connectionString: parseDatabaseUrl(url).url,
    connectionTimeoutMillis: timeoutMs,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot reach PostgreSQL at ${redactUrl(url)} (${reason}). Start one with \`docker compose up -d postgres\` or set DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates the database named in `url` when it does not exist yet (connecting to
 * the server's `postgres` database to do so). Lets `pnpm start` work on a fresh server.
 */
export async function ensureDatabaseExists(url: string): Promise<boolean> {
  const target = new URL(parseDatabaseUrl(url).url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (name === "" || name === "postgres") return false;
  const admin = new URL(target);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    const existing = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (existing.rowCount !== 0) return false;
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    return true;
  } catch (error) {
    // Another process created it meanwhile, or we may not create databases: let the caller's connect decide.
    if ((error as { code?: string }).code === "42P04") return false;
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}
