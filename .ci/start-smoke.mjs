// `pnpm start` smoke test, run by .ci/node-version with the Node under test: start genq on a
// fresh database, wait for its banner (printed only when the API and the worker are ready),
// create a user, submit a text job over HTTP, see it complete on the mock provider, stop
// with SIGTERM and expect exit status 0. Exits non-zero, with the output, on any failure.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "apps/cli/src/main.ts");
const TIMEOUT_MS = 180_000;
const started = Date.now();

const port = await new Promise((resolve) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const { port: free } = server.address();
    server.close(() => resolve(free));
  });
});
const suffix = randomBytes(4).toString("hex");
const database = `genq_smoke_${suffix}`;
const env = {
  ...process.env,
  NODE_ENV: "development",
  DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${database}`,
  GENQ_QUEUE_PREFIX: `smoke-${suffix}`,
  PORT: String(port),
  LOG_LEVEL: "warn",
  GENQ_MOCK_LATENCY_MS: "0",
};
const base = `http://127.0.0.1:${port}`;

const system = spawn(process.execPath, ["--import", "tsx", CLI, "start"], {
  cwd: ROOT,
  env,
  stdio: ["ignore", "pipe", "pipe"],
});
let output = "";
system.stdout.on("data", (chunk) => {
  output += chunk;
});
system.stderr.on("data", (chunk) => {
  output += chunk;
});
const exited = new Promise((resolve) => system.on("close", (code, signal) => resolve({ code, signal })));

function fail(message) {
  process.stderr.write(
    `start smoke (${process.version}): ${message}\n--- pnpm start output ---\n${output}\n`,
  );
  system.kill("SIGKILL");
  dropDatabase();
  process.exit(1);
}
setTimeout(() => fail(`not done after ${TIMEOUT_MS} ms`), TIMEOUT_MS).unref();

async function until(check, what) {
  while (!(await check())) {
    if (system.exitCode !== null) fail(`pnpm start exited (${system.exitCode}) while waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function dropDatabase() {
  spawnSync(
    "psql",
    ["-h", "127.0.0.1", "-U", "postgres", "-c", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`],
    {
      stdio: "ignore",
    },
  );
}

await until(() => output.includes("genq is running"), "the banner");
const readyAfterMs = Date.now() - started;

const user = spawnSync(
  process.execPath,
  ["--import", "tsx", CLI, "users", "create", "smoke@example.com", "--key-only"],
  {
    cwd: ROOT,
    env,
    encoding: "utf8",
  },
);
if (user.status !== 0) fail(`users create failed: ${user.stderr}`);
const headers = { authorization: `Bearer ${user.stdout.trim()}`, "content-type": "application/json" };

const submitted = await fetch(`${base}/v1/jobs`, {
  method: "POST",
  headers,
  body: JSON.stringify({ type: "text", input: { prompt: "smoke" } }),
});
if (submitted.status !== 202) fail(`POST /v1/jobs answered ${submitted.status}: ${await submitted.text()}`);
const { id } = await submitted.json();
let job;
await until(async () => {
  job = await (await fetch(`${base}/v1/jobs/${id}`, { headers })).json();
  return ["completed", "failed", "canceled"].includes(job.status);
}, `job ${id} to finish`);
if (job.status !== "completed") fail(`job ${id} ended ${job.status}: ${JSON.stringify(job.error)}`);

system.kill("SIGTERM");
const { code, signal } = await exited;
if (code !== 0) fail(`pnpm start exited with ${code ?? signal} after SIGTERM`);
dropDatabase();
process.stdout.write(
  `start smoke (${process.version}): ready in ${(readyAfterMs / 1000).toFixed(1)} s, job completed, stopped cleanly; ${((Date.now() - started) / 1000).toFixed(1)} s in all\n`,
);
