import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CommonEnv, isSupervisorMessage } from "@genq/core";
import { assertDatabaseReachable, ensureDatabaseExists, migrate } from "@genq/db";
import { assertRedisReachable } from "@genq/queue";
import { checkConfiguration } from "./check-configuration.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** After this long without both ready reports, say which process is still starting (and keep waiting). */
const SLOW_START_NOTICE_MS = 60_000;
/** A process still running this long after being told to stop is killed (the worker drains for 30 s by default). */
const STOP_GRACE_MS = 60_000;

/** One process `pnpm start` runs and watches. */
interface Child {
  readonly role: "genq-api" | "genq-worker";
  readonly process: ChildProcess;
  ready: boolean;
  /** What the process reported when it could not start. */
  problems: string[] | undefined;
  exited: boolean;
}

export interface StartSystemOptions {
  /** Where the lines of `pnpm start` itself go (the children write to the inherited stdout/stderr). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/**
 * `pnpm start`: checks the configuration of both processes, Redis and Postgres,
 * migrates, then runs the API and one
 * worker as child processes, watched from the moment they are spawned. Each
 * reports ready, or what stopped it, over its IPC channel; the banner is printed
 * only when both are ready. When either stops on its own, the other is stopped
 * and the exit status is non-zero, with the child's problem as its message.
 * Signals are passed on to both; resolves with the exit status.
 */
export async function startSystem(env: CommonEnv, options: StartSystemOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const problems = checkConfiguration();
  if (problems.length > 0) {
    for (const problem of problems) stderr.write(`genq: ${problem}\n`);
    return 1;
  }
  await assertRedisReachable(env.REDIS_URL);
  await assertDatabaseReachable(env.DATABASE_URL).catch(async (error: unknown) => {
    if (!(await ensureDatabaseExists(env.DATABASE_URL).catch(() => false))) throw error;
  });
  const { applied } = await migrate({ connectionString: env.DATABASE_URL });
  if (applied.length > 0) stdout.write(`Applied migrations: ${applied.join(", ")}\n`);

  const children = [
    spawnChild("genq-api", "apps/api/src/main.ts"),
    spawnChild("genq-worker", "apps/worker/src/main.ts"),
  ];
  let stopping = false;
  let exitStatus = 0;

  const stopAll = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const child of children) if (!child.exited) child.process.kill(signal);
    const killer = setTimeout(() => {
      for (const child of children) if (!child.exited) child.process.kill("SIGKILL");
    }, STOP_GRACE_MS);
    killer.unref();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) stdout.write(`\nStopping genq (${signal})...\n`);
    stopAll(signal);
  };
  const onSigint = () => onSignal("SIGINT");
  const onSigterm = () => onSignal("SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);

  const slowStart = setTimeout(() => {
    const waiting = children.filter((child) => !child.ready && !child.exited).map((child) => child.role);
    if (waiting.length > 0) stdout.write(`genq: still waiting for ${waiting.join(" and ")} to be ready...\n`);
  }, SLOW_START_NOTICE_MS);
  slowStart.unref();

  await new Promise<void>((resolve) => {
    for (const child of children) {
      child.process.on("message", (message: unknown) => {
        if (!isSupervisorMessage(message)) return;
        if (message.type === "genq:failed") {
          child.problems = message.problems;
          return;
        }
        child.ready = true;
        if (!stopping && children.every((each) => each.ready)) {
          clearTimeout(slowStart);
          stdout.write(banner());
        }
      });
      child.process.on("error", (error) => {
        // Spawning failed (no exit event follows for a process that never ran).
        if (child.process.pid !== undefined) return;
        child.exited = true;
        child.problems = [`could not be started: ${error.message}`];
        onUnexpectedExit(child, 1);
        if (children.every((each) => each.exited)) resolve();
      });
      // "close", not "exit": it comes after the IPC channel is drained, so a failure report is never lost.
      child.process.on("close", (code, signal) => {
        if (child.exited) return;
        child.exited = true;
        if (!stopping) onUnexpectedExit(child, code === 0 || code === null ? 1 : code, signal);
        else if (code !== 0 && code !== null && exitStatus === 0) exitStatus = code;
        if (children.every((each) => each.exited)) resolve();
      });
    }
  });

  /** A child stopped without being asked to: report why, stop the rest, and fail. */
  function onUnexpectedExit(child: Child, status: number, signal?: NodeJS.Signals | null) {
    exitStatus = status;
    const when = child.ready ? "stopped" : "could not start";
    const problems = child.problems ?? [
      `exited ${signal ? `on ${signal}` : `with status ${status}`} (its output above says why)`,
    ];
    for (const problem of problems) stderr.write(`${child.role}: ${problem}\n`);
    const others = children.filter((each) => each !== child && !each.exited).map((each) => each.role);
    stderr.write(
      `genq: ${child.role} ${when}${others.length > 0 ? `; stopping ${others.join(" and ")}` : ""}\n`,
    );
    stopAll("SIGTERM");
  }

  clearTimeout(slowStart);
  process.off("SIGINT", onSigint);
  process.off("SIGTERM", onSigterm);
  return exitStatus;
}

/** Spawns an app with an IPC channel (for its ready/failed reports); its output goes to this terminal. */
function spawnChild(role: Child["role"], entry: string): Child {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, entry)], {
    cwd: ROOT,
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    env: process.env,
  });
  return { role, process: child, ready: false, problems: undefined, exited: false };
}

function banner(): string {
  const host =
    process.env.HOST === undefined || process.env.HOST === "" || process.env.HOST === "0.0.0.0"
      ? "127.0.0.1"
      : process.env.HOST;
  const base = `http://${host.includes(":") ? `[${host}]` : host}:${process.env.PORT || "3000"}`;
  return (
    `\ngenq is running (API and worker ready)\n  API:        ${base}/v1\n  API docs:   ${base}/docs\n  Bull Board: ${base}/admin/queues\n` +
    "Create a user with: pnpm genq-admin users create you@example.com\nPress Ctrl+C to stop.\n\n"
  );
}
