import { type ChildProcess, execFile } from "node:child_process";
import { chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import type { Harness } from "../harness.ts";

const run = promisify(execFile);

/**
 * `GENQ_CHAOS_SCALE=full` (set by `pnpm test:chaos`) runs the chaos scenarios at
 * full size; otherwise (`pnpm test`, CI) they run shortened, in a few minutes.
 */
export const CHAOS_FULL = process.env.GENQ_CHAOS_SCALE === "full";

/** `GENQ_CHAOS_VERBOSE=1` prints progress while a scenario runs. */
export const CHAOS_VERBOSE = process.env.GENQ_CHAOS_VERBOSE === "1";

/** Picks the shortened or the full figure of a scenario. */
export function chaosScale<T>(shortened: T, full: T): T {
  return CHAOS_FULL ? full : shortened;
}

/** A random integer in [min, max]. */
export function randomBetween(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Runs `task` over `items` with at most `concurrency` in flight; results keep the items' order. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Counts a harness's jobs by status, straight from Postgres (the source of truth). */
export async function countByStatus(harness: Harness): Promise<Record<string, number>> {
  const groups = await harness.db.job.groupBy({ by: ["status"], _count: { _all: true } });
  return Object.fromEntries(groups.map((group) => [group.status, group._count._all]));
}

/** How many of a harness's jobs are not yet completed, failed or canceled. */
export async function unfinishedJobs(harness: Harness): Promise<number> {
  return harness.db.job.count({ where: { status: { notIn: ["completed", "failed", "canceled"] } } });
}

/**
 * A fixed-size fleet of real worker processes, and a killer that SIGKILLs a random
 * one every `intervalMs` and starts a replacement, as a crashing node would be replaced.
 */
export class WorkerFleet {
  readonly #harness: Harness;
  readonly #environment: Record<string, string>;
  readonly #live = new Set<ChildProcess>();
  #killing: Promise<void> | undefined;
  #stopKilling = false;
  readonly #replacements = new Set<Promise<void>>();
  #failure: unknown;
  /** SIGKILLs sent so far. */
  kills = 0;

  constructor(harness: Harness, environment: Record<string, string>) {
    this.#harness = harness;
    this.#environment = environment;
  }

  /** Starts `size` workers; resolves once every one is ready. */
  async start(size: number): Promise<void> {
    await Promise.all(Array.from({ length: size }, () => this.#spawn()));
  }

  async #spawn(): Promise<void> {
    const child = await this.#harness.spawnWorker(this.#environment);
    // The harness scans the whole output for its ready line on every chunk; over thousands
    // of jobs' log lines that is quadratic. Past ready, drain the output unread instead.
    for (const output of [child.stdout, child.stderr]) {
      output?.removeAllListeners("data");
      output?.resume();
    }
    this.#live.add(child);
    child.once("exit", () => this.#live.delete(child));
  }

  /** SIGKILLs one random live worker and waits until it is gone. */
  async killOne(): Promise<void> {
    const live = [...this.#live];
    const victim = live[Math.floor(Math.random() * live.length)];
    if (victim === undefined) return;
    this.#live.delete(victim);
    victim.kill("SIGKILL");
    this.kills += 1;
    await exited(victim);
  }

  /**
   * Kills a random worker every `intervalMs` (a random value in the range) and
   * starts a replacement in the background, until {@link WorkerFleet.stopKilling}.
   * The last live worker is spared while replacements start, so the run keeps
   * moving on a slow machine. The interval is load, not synchronization.
   */
  startKilling(intervalMs: [number, number]): void {
    this.#stopKilling = false;
    this.#killing = (async () => {
      while (!this.#stopKilling) {
        await new Promise((resolve) => setTimeout(resolve, randomBetween(...intervalMs)));
        if (this.#stopKilling || this.#live.size < 2) continue;
        await this.killOne();
        const replacement = this.#spawn();
        this.#replacements.add(replacement);
        replacement.then(
          () => this.#replacements.delete(replacement),
          (error: unknown) => {
            this.#replacements.delete(replacement);
            this.#failure ??= error;
          },
        );
      }
    })();
  }

  /** Stops the killer, waits for replacements being started, and rethrows a failure to start one. */
  async stopKilling(): Promise<void> {
    this.#stopKilling = true;
    await this.#killing;
    await Promise.allSettled([...this.#replacements]);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Workers alive now. */
  get size(): number {
    return this.#live.size;
  }
}

/** Every file under `directory`, as paths relative to it (empty when it does not exist). */
export async function listFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
    .sort();
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(),
      );
    });
  });
}

const POSTGRES_BIN = process.env.GENQ_POSTGRES_BIN ?? "/usr/lib/postgresql/15/bin";

/**
 * A private PostgreSQL cluster for one test file, on a free port with its socket in
 * its own directory. Never the machine's shared server.
 */
export interface PrivatePostgres {
  /** A connection URL to its `postgres` database. */
  readonly url: string;
  /** Stops the server (`-m fast`: sessions are cut off, as in a crash of the connection). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes the cluster. Safe to call more than once. */
  destroy(): Promise<void>;
}

/** Creates and starts a private PostgreSQL cluster on a free port. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const directory = await mkdtemp(join(tmpdir(), "genq-chaos-pg-"));
  const data = join(directory, "data");
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout: user } = await run("id", ["-u", "postgres"]);
    const { stdout: group } = await run("id", ["-g", "postgres"]);
    await chown(directory, Number(user.trim()), Number(group.trim()));
  }
  const asPostgres = (command: string, args: string[]) =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", join(POSTGRES_BIN, command), ...args])
      : run(join(POSTGRES_BIN, command), args);
  const port = await freePort();
  const serverOptions = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const pgCtl = (...args: string[]) =>
    asPostgres("pg_ctl", ["-D", data, "-o", serverOptions, "-l", join(directory, "server.log"), ...args]);
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await pgCtl("-w", "-m", "immediate", "stop").catch(() => {});
    await rm(directory, { recursive: true, force: true });
  };
  try {
    await asPostgres("initdb", ["-D", data, "--auth=trust", "-U", "postgres", "--no-sync"]);
    await pgCtl("-w", "start");
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start: async () => {
      await pgCtl("-w", "start");
    },
    stop: async () => {
      await pgCtl("-w", "-m", "fast", "stop");
    },
    destroy,
  };
}
