import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommonEnv } from "@genq/core";
import { assertDatabaseReachable, ensureDatabaseExists, migrate } from "@genq/db";
import { assertRedisReachable } from "@genq/queue";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function run(name: string, entry: string): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", join(ROOT, entry)], {
    cwd: ROOT,
    stdio: "inherit",
    env: process.env,
  }).on("error", (error) => process.stderr.write(`genq: could not start ${name}: ${error.message}\n`));
}

async function waitForHttp(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/**
 * `pnpm start`: checks Redis and Postgres, migrates, then runs the API and one
 * worker as child processes until interrupted (signals are passed on to both).
 */
export async function startSystem(env: CommonEnv): Promise<number> {
  await assertRedisReachable(env.REDIS_URL);
  await assertDatabaseReachable(env.DATABASE_URL).catch(async (error: unknown) => {
    if (!(await ensureDatabaseExists(env.DATABASE_URL).catch(() => false))) throw error;
  });
  const { applied } = await migrate({ connectionString: env.DATABASE_URL });
  if (applied.length > 0) process.stdout.write(`Applied migrations: ${applied.join(", ")}\n`);

  const children = [run("api", "apps/api/src/main.ts"), run("worker", "apps/worker/src/main.ts")];
  const stop = (signal: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null) child.kill(signal);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  const host =
    process.env.HOST === undefined || process.env.HOST === "0.0.0.0" ? "127.0.0.1" : process.env.HOST;
  const base = `http://${host}:${process.env.PORT ?? "3000"}`;
  if (await waitForHttp(`${base}/health/live`, 30_000)) {
    process.stdout.write(
      `\ngenq is running\n  API:        ${base}/v1\n  API docs:   ${base}/docs\n  Bull Board: ${base}/admin/queues\n` +
        "Create a user with: pnpm genq users create you@example.com\nPress Ctrl+C to stop.\n\n",
    );
  }
  // When either process exits, stop the other and report its code.
  const code = await new Promise<number>((resolve) => {
    for (const child of children) {
      child.on("exit", (exitCode) => {
        stop("SIGTERM");
        resolve(exitCode ?? 1);
      });
    }
  });
  await Promise.all(
    children.map((child) =>
      child.exitCode === null ? new Promise((resolve) => child.on("exit", resolve)) : null,
    ),
  );
  return code;
}
