import { EnvError, type EnvIssue } from "./env.ts";

/**
 * What a genq process started by `pnpm start` (the API, a worker) tells its parent
 * over the IPC channel Node opens for `spawn(..., { stdio: [..., "ipc"] })`: that it is
 * ready to serve, or that it could not start and why. The parent never reads log lines.
 */
export type SupervisorMessage =
  | { type: "genq:ready"; role: string }
  | { type: "genq:failed"; role: string; problems: string[] };

/** True for a {@link SupervisorMessage} (anything else on the channel is ignored). */
export function isSupervisorMessage(value: unknown): value is SupervisorMessage {
  if (typeof value !== "object" || value === null) return false;
  const message = value as { type?: unknown; role?: unknown; problems?: unknown };
  if (typeof message.role !== "string") return false;
  if (message.type === "genq:ready") return true;
  return (
    message.type === "genq:failed" &&
    Array.isArray(message.problems) &&
    message.problems.every((problem) => typeof problem === "string")
  );
}

/** The ports a process listens on, by the variable that sets each: `{ PORT: 3000 }`. */
export type PortVariables = Readonly<Record<string, number>>;

/**
 * Describes an error that stopped start-up as lines saying what is wrong and what to
 * change, never a stack trace: each bad variable of an {@link EnvError}; a port in use
 * (or not allowed) with the variable that sets it; otherwise the error's message.
 */
export function describeStartupError(error: unknown, ports: PortVariables = {}): string[] {
  const issues = envIssues(error);
  if (issues !== undefined) return issues.map((issue) => `${issue.variable}: ${issue.message}`);
  const listenProblem = describeListenError(error, ports);
  if (listenProblem !== undefined) return [listenProblem];
  const text = error instanceof Error ? error.message : String(error);
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return lines.length === 0 ? ["stopped by an error without a message"] : lines;
}

function envIssues(error: unknown): EnvIssue[] | undefined {
  if (error instanceof EnvError) return error.issues;
  // An EnvError from another copy of this module (errors are recognised by name, STYLE.md).
  if (error instanceof Error && error.name === "EnvError") {
    const issues = (error as { issues?: unknown }).issues;
    if (Array.isArray(issues)) return issues as EnvIssue[];
  }
  return undefined;
}

function describeListenError(error: unknown, ports: PortVariables): string | undefined {
  const { code, port, address } = error as { code?: unknown; port?: unknown; address?: unknown };
  if ((code !== "EADDRINUSE" && code !== "EACCES") || typeof port !== "number") return undefined;
  const variable = Object.entries(ports).find(([, value]) => value === port)?.[0];
  const where = typeof address === "string" ? `${address}:${port}` : `port ${port}`;
  const change = variable === undefined ? "choose another port" : `set ${variable} to another port`;
  return code === "EADDRINUSE"
    ? `${where} is already in use${variable === undefined ? "" : ` (${variable}=${port})`}: ${change}, or stop the process that listens there`
    : `${where} may not be opened by this user${variable === undefined ? "" : ` (${variable}=${port})`}: ${change} (above 1023)`;
}

/** Tells the parent that started this process (`pnpm start`) that it is ready; nothing when run on its own. */
export function reportReady(role: string): void {
  if (process.send !== undefined && process.connected) {
    process.send({ type: "genq:ready", role } satisfies SupervisorMessage);
  }
}

/**
 * Ends a process that could not start, with exit status 1: the problems go to the
 * parent that started it (which prints them), or to stderr as `role: problem` lines
 * when it runs on its own.
 */
export function exitWithStartupFailure(role: string, problems: string[]): void {
  if (process.send !== undefined && process.connected) {
    process.send({ type: "genq:failed", role, problems } satisfies SupervisorMessage, undefined, {}, () =>
      process.exit(1),
    );
    return;
  }
  for (const problem of problems) process.stderr.write(`${role}: ${problem}\n`);
  process.exit(1);
}

/**
 * Runs `stop` when the parent that started this process goes away without stopping
 * it (killed, crashed), so no API or worker is left running on its own.
 */
export function stopWhenParentExits(stop: () => void): void {
  if (process.send !== undefined) process.once("disconnect", stop);
}
