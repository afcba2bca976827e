import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** Each case starts real processes (tsx compiles on first load); the machine may be busy. */
const CASE_TIMEOUT_MS = 300_000;

let database: TestDatabase;
const servers: Server[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
}, 60_000);

afterAll(async () => {
  for (const server of servers) server.close();
  await database?.drop();
});

/** A port something else already listens on. */
async function busyPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface StartRun {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output: () => string;
  /** Resolves with the exit status when the process has ended. */
  exited: Promise<number | null>;
}

/** `pnpm start` (the CLI's `start` command) with the test database, its own queue prefix and a free API port. */
async function start(env: Record<string, string> = {}): Promise<StartRun> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "apps/cli/src/main.ts"), "start"], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: "development",
      DATABASE_URL: database.url,
      GENQ_QUEUE_PREFIX: `start-${randomBytes(4).toString("hex")}`,
      PORT: String(await freePort()),
      LOG_LEVEL: "warn",
      GENQ_MOCK_LATENCY_MS: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  // A start that hangs fails its test instead of outliving it.
  const guard = setTimeout(() => child.kill("SIGKILL"), CASE_TIMEOUT_MS - 5_000);
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve(code);
    }),
  );
  return { child, output: () => output, exited };
}

/** Runs `pnpm start` to its end; it must fail with `message` as one of its lines and no stack trace. */
async function expectStartFails(env: Record<string, string>, message: string | RegExp) {
  const run = await start(env);
  const status = await run.exited;
  const output = run.output();
  expect(status, output).not.toBe(0);
  expect(status, output).not.toBeNull();
  const lines = output.split("\n");
  expect(
    lines.some((line) => (typeof message === "string" ? line.includes(message) : message.test(line))),
    output,
  ).toBe(true);
  expect(output).not.toContain("genq is running");
  expect(output).not.toMatch(/^\s+at /m);
}

async function waitForOutput(run: StartRun, text: string): Promise<void> {
  while (!run.output().includes(text)) {
    if (run.child.exitCode !== null) throw new Error(`exited before printing "${text}":\n${run.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.concurrent("pnpm start never lies", { timeout: CASE_TIMEOUT_MS }, () => {
  it("fails naming PORT when the API's port is in use", async () => {
    const port = await busyPort();
    await expectStartFails(
      { PORT: String(port) },
      `genq-api: 127.0.0.1:${port} is already in use (PORT=${port}): set PORT to another port`,
    );
  });

  it("fails naming GENQ_WORKER_HEALTH_PORT when the worker's health port is in use", async () => {
    const port = await busyPort();
    await expectStartFails(
      { GENQ_WORKER_HEALTH_PORT: String(port) },
      `genq-worker: 127.0.0.1:${port} is already in use (GENQ_WORKER_HEALTH_PORT=${port}): set GENQ_WORKER_HEALTH_PORT to another port`,
    );
  });

  it("fails listing the valid plans when GENQ_PLANS names an unknown one", async () => {
    await expectStartFails(
      { GENQ_PLANS: '{"gold":{"textTokens":1}}' },
      'genq: GENQ_PLANS: names an unknown plan "gold"; the plans are basic, professional, enterprise',
    );
  });

  it("fails when GENQ_PLANS is not JSON", async () => {
    await expectStartFails({ GENQ_PLANS: "basic=100" }, "genq: GENQ_PLANS: must be JSON");
  });

  it("fails in production without an operator password", async () => {
    await expectStartFails(
      {
        NODE_ENV: "production",
        GENQ_MOCK_ENABLED: "true",
        GENQ_STORAGE_SIGNING_SECRET: "0123456789abcdef0123456789abcdef",
      },
      "genq: GENQ_ADMIN_PASSWORD: is required when NODE_ENV=production",
    );
  });

  it("fails when an encryption key is too short", async () => {
    await expectStartFails(
      { GENQ_ENCRYPTION_KEYS: `k1:${Buffer.from("short").toString("base64")}` },
      "genq: GENQ_ENCRYPTION_KEYS: entry 1 (k1): the key must be 32 bytes of base64, got 5 bytes",
    );
  });

  it("fails naming GENQ_PROVIDERS_FILE when the providers file is missing", async () => {
    await expectStartFails(
      { GENQ_PROVIDERS_FILE: "/nonexistent/genq/providers.yaml" },
      "genq-worker: GENQ_PROVIDERS_FILE (/nonexistent/genq/providers.yaml): the file does not exist",
    );
  });

  it("fails naming REDIS_URL when Redis cannot be reached", async () => {
    const port = await freePort();
    await expectStartFails(
      { REDIS_URL: `redis://127.0.0.1:${port}` },
      /^genq: Cannot reach Redis .* set REDIS_URL/,
    );
  });

  it("fails naming DATABASE_URL when PostgreSQL cannot be reached", async () => {
    const port = await freePort();
    await expectStartFails(
      { DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/genq` },
      /^genq: Cannot reach PostgreSQL .* set DATABASE_URL/,
    );
  });

  it("prints the banner once both are ready, and stops everything with a non-zero status when the worker dies", async () => {
    const run = await start();
    await waitForOutput(run, "genq is running");
    const port = /http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(run.output())?.[1];
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);

    const worker = childPids(run.child.pid ?? 0).find(({ args }) => args.includes("apps/worker/src/main.ts"));
    expect(worker).toBeDefined();
    process.kill(worker?.pid ?? 0, "SIGKILL");

    const status = await run.exited;
    expect(status, run.output()).not.toBe(0);
    expect(run.output()).toContain("genq-worker: exited on SIGKILL");
    expect(run.output()).toContain("genq: genq-worker stopped; stopping genq-api");
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
  });

  it("stops both on SIGTERM and exits 0", async () => {
    const run = await start();
    await waitForOutput(run, "genq is running");
    const children = childPids(run.child.pid ?? 0);
    expect(children).toHaveLength(2);
    run.child.kill("SIGTERM");
    expect(await run.exited, run.output()).toBe(0);
    for (const { pid } of children) expect(() => process.kill(pid, 0)).toThrow();
  });
});

function childPids(parent: number): { pid: number; args: string }[] {
  let text = "";
  try {
    text = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(parent)], { encoding: "utf8" });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return text
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ pid: Number(match[1]), args: match[2] ?? "" }));
}
