import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildApp } from "@genq/api";
import { parseEnv, StorageEnv } from "@genq/core";
import { AccountRepository, createPrismaClient, type Database, JobRepository } from "@genq/db";
import { createTestDatabase, type TestDatabase } from "@genq/db/testing";
import { JobLifecycle } from "@genq/lifecycle";
import { GenqMetrics } from "@genq/metrics";
import { createRedisConnection, JobQueues } from "@genq/queue";
import { QuotaLedger } from "@genq/quota";
import { createStorage, type ObjectStorage, storageConfigFromEnv } from "@genq/storage";
import { parseWebhookAllowlist } from "@genq/webhooks";
import { type RunningWorker, startWorker } from "@genq/worker";
import { loadWorkerEnv } from "@genq/worker/env";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { pino } from "pino";
import { ContractRecorder } from "./contract-check.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** Short locks, so a dead worker's job is taken over in about two seconds instead of thirty. */
export const FAST_STALL = { GENQ_LOCK_DURATION_MS: "1500", GENQ_STALLED_INTERVAL_MS: "1000" };
export const ADMIN = { user: "operator", password: "operator-password-1" };
/**
 * Failed operator-login limits of the harness's app: out of reach, since the fuzzer sends
 * thousands of wrong credentials from one address. operator-auth.int.test.ts checks the real ones.
 */
export const HARNESS_LOGIN_LIMITS = { maxFailuresPerIp: 1_000_000, maxFailuresPerUser: 1_000_000 };

/** Options for {@link startHarness}. */
export interface HarnessOptions {
  /** Redis for this harness (default: the machine's). */
  redisUrl?: string;
  /**
   * The PostgreSQL database the harness's schema is created in (default: `DATABASE_URL`,
   * then the machine's `test` database); e.g. a private cluster a test restarts.
   */
  databaseUrl?: string;
  /** Extra worker environment (GENQ_*, OPENAI_*). */
  workerEnv?: Record<string, string>;
  /** The API's OpenAI-compatible batches' tier (`GENQ_OPENAI_BATCH_TIER`); default online. */
  openaiBatchTier?: "online" | "economy";
  /** Start an in-process worker now (default true). */
  startWorker?: boolean;
  /**
   * Object storage for image jobs: a temporary local directory (default), or an
   * S3-compatible server (`startS3rver()` from `@genq/storage/testing`).
   */
  s3?: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/**
 * A genq system for one test file: its own Postgres schema, its own queue
 * prefix, the real API (through `inject`) and a real worker.
 */
export class Harness {
  readonly prefix = `t${randomBytes(5).toString("hex")}`;
  database!: TestDatabase;
  db!: Database;
  redis!: Redis;
  queues!: JobQueues;
  app!: FastifyInstance;
  jobs!: JobRepository;
  /** Job transitions, as a worker makes them (for tests that play the worker). */
  lifecycle!: JobLifecycle;
  accounts!: AccountRepository;
  worker: RunningWorker | undefined;
  readonly redisUrl: string;
  storage!: ObjectStorage;
  quota!: QuotaLedger;
  metrics!: GenqMetrics;
  readonly storageDirectory = join(tmpdir(), `genq-objects-${randomBytes(5).toString("hex")}`);
  readonly #s3: HarnessOptions["s3"];
  readonly #databaseUrl: string | undefined;
  readonly #openaiBatchTier: "online" | "economy" | undefined;
  readonly #workerEnv: Record<string, string>;
  readonly #children = new Set<ChildProcess>();
  /** Every response `app.inject` returns; `close()` fails when one does not match contract/openapi.json. */
  readonly contract = new ContractRecorder();

  constructor(options: HarnessOptions = {}) {
    this.redisUrl = options.redisUrl ?? REDIS_URL;
    this.#workerEnv = options.workerEnv ?? {};
    this.#s3 = options.s3;
    this.#databaseUrl = options.databaseUrl;
    this.#openaiBatchTier = options.openaiBatchTier;
  }

  /** The storage settings API and workers of this harness share. */
  storageEnvironment(): Record<string, string> {
    const s3 = this.#s3;
    if (s3 === undefined) {
      return { GENQ_STORAGE_DRIVER: "local", GENQ_STORAGE_DIR: this.storageDirectory };
    }
    return {
      GENQ_STORAGE_DRIVER: "s3",
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      S3_CHECKSUM_WHEN_REQUIRED: "true",
    };
  }

  /** Environment for a worker of this harness (in-process or child process). */
  workerEnvironment(extra: Record<string, string> = {}): Record<string, string> {
    return {
      DATABASE_URL: this.database.url,
      REDIS_URL: this.redisUrl,
      GENQ_QUEUE_PREFIX: this.prefix,
      GENQ_MOCK_LATENCY_MS: "0",
      GENQ_RETRY_BACKOFF_MS: "50",
      GENQ_RECONCILE_INTERVAL_MS: "500",
      LOG_LEVEL: "warn",
      LOG_PRETTY: "false",
      ...this.storageEnvironment(),
      ...this.#workerEnv,
      ...extra,
    };
  }

  async start(options: HarnessOptions = {}): Promise<this> {
    this.database = await createTestDatabase(
      this.#databaseUrl === undefined ? {} : { baseUrl: this.#databaseUrl },
    );
    this.db = createPrismaClient({ connectionString: this.database.url, maxConnections: 5 });
    this.redis = createRedisConnection({ url: this.redisUrl, role: "producer" });
    this.redis.on("error", () => {});
    this.queues = new JobQueues({
      connection: this.redis,
      prefix: this.prefix,
      overrides: { text: { backoffMs: 50 }, image: { backoffMs: 50 } },
    });
    this.jobs = new JobRepository({ db: this.db });
    this.lifecycle = new JobLifecycle({ db: this.db });
    this.accounts = new AccountRepository({ db: this.db });
    this.storage = createStorage(
      storageConfigFromEnv(parseEnv(StorageEnv, this.storageEnvironment()), {
        publicBaseUrl: "http://localhost/v1/assets",
      }),
    );
    await this.storage.ensureReady();
    this.quota = new QuotaLedger({ db: this.db });
    this.metrics = new GenqMetrics({ process: "api", defaultMetrics: false });
    this.app = await buildApp({
      metrics: this.metrics,
      quota: this.quota,
      storage: this.storage,
      db: this.db,
      redis: this.redis,
      queues: this.queues,
      logger: false,
      admin: { ...ADMIN, loginLimits: HARNESS_LOGIN_LIMITS },
      openaiBatchTier: this.#openaiBatchTier,
      // The API checks webhook URLs against the same allowlist as the worker.
      ...(this.#workerEnv.GENQ_WEBHOOK_ALLOWED_HOSTS === undefined
        ? {}
        : { webhookAllowlist: parseWebhookAllowlist(this.#workerEnv.GENQ_WEBHOOK_ALLOWED_HOSTS) }),
    });
    this.contract.attach(this.app);
    await this.app.ready();
    await waitUntil(() => this.redis.status === "ready", 5_000);
    if (options.startWorker ?? true) await this.startInProcessWorker();
    return this;
  }

  /** Starts a worker in this process. */
  async startInProcessWorker(extra: Record<string, string> = {}): Promise<RunningWorker> {
    const environment = this.workerEnvironment(extra);
    this.worker = await startWorker(loadWorkerEnv(environment), pino({ level: "silent" }), environment);
    return this.worker;
  }

  /** Starts a real worker process (`apps/worker/src/main.ts`); resolves once it is ready. */
  async spawnWorker(extra: Record<string, string> = {}): Promise<ChildProcess> {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "apps/worker/src/main.ts")], {
      cwd: ROOT,
      env: { ...process.env, ...this.workerEnvironment({ LOG_LEVEL: "info", ...extra }) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#children.add(child);
    child.on("exit", () => this.#children.delete(child));
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("genq worker ready")) resolve();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) =>
        reject(new Error(`worker exited with ${code} before it was ready:\n${output}`)),
      );
    });
    return child;
  }

  /** Creates a user (on the basic plan unless told) and returns its id and API key. */
  async createUser(
    email = `${randomBytes(4).toString("hex")}@example.com`,
    plan: "basic" | "professional" | "enterprise" = "basic",
  ): Promise<{ userId: string; apiKey: string }> {
    const { user, apiKey } = await this.accounts.createUser({ email, plan });
    return { userId: user.id, apiKey };
  }

  /** Submits a job through the API. */
  submit(apiKey: string, body: unknown, headers: Record<string, string> = {}) {
    return this.app.inject({
      method: "POST",
      url: "/v1/jobs",
      headers: {
        authorization: `Bearer ${apiKey}`,
        // A string body is sent as it is: JSON text that JSON.stringify could not produce.
        ...(typeof body === "string" ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      payload: body as Record<string, unknown> | string,
    });
  }

  /** Cancels a job through the API. */
  cancel(apiKey: string, id: string) {
    return this.app.inject({
      method: "POST",
      url: `/v1/jobs/${id}/cancel`,
      headers: { authorization: `Bearer ${apiKey}` },
    });
  }

  /** Reads a job through the API. */
  async getJob(apiKey: string, id: string): Promise<Record<string, unknown> & { status: string }> {
    const response = await this.app.inject({
      method: "GET",
      url: `/v1/jobs/${id}`,
      headers: { authorization: `Bearer ${apiKey}` },
    });
    if (response.statusCode !== 200)
      throw new Error(`GET /v1/jobs/${id} answered ${response.statusCode}: ${response.body}`);
    return response.json();
  }

  /** Polls a job until `predicate` holds. */
  async waitForJob(
    apiKey: string,
    id: string,
    predicate: (job: Record<string, unknown> & { status: string }) => boolean = (job) =>
      ["completed", "failed", "canceled"].includes(job.status),
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown> & { status: string }> {
    let last: (Record<string, unknown> & { status: string }) | undefined;
    await waitUntil(async () => {
      last = await this.getJob(apiKey, id);
      return predicate(last);
    }, timeoutMs).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last)}`);
    });
    return last!;
  }

  async close(): Promise<void> {
    for (const child of this.#children) child.kill("SIGKILL");
    await this.worker?.close();
    await this.app?.close();
    await this.queues?.close();
    if (this.redis?.status === "ready") await deleteKeys(this.redis, `${this.prefix}:*`);
    this.redis?.disconnect();
    await this.db?.$disconnect();
    await this.database?.drop();
    await this.storage?.close();
    await rm(this.storageDirectory, { recursive: true, force: true });
    const mismatches = this.contract.mismatches();
    if (mismatches.length > 0) {
      throw new Error(
        `responses that do not match contract/openapi.json:\n${mismatches
          .map(({ request, problem }) => `  ${request}: ${problem}`)
          .join("\n")}`,
      );
    }
  }
}

/** Deletes the keys matching `pattern` (this harness's queues only, never others'). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

/** Polls `condition` every 25 ms until it holds, or rejects after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A port nothing listens on now (the OS picks it), for a server a test starts. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A private redis-server on a free port, for tests that flush or restart Redis. */
export async function startPrivateRedis(): Promise<{
  url: string;
  redis: Redis;
  /** Kills the server (like a crash: nothing is saved). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}> {
  // Another process can take the port between the check and the bind: then try another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(await freePort());
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startRedisOn(port: number) {
  const url = `redis://127.0.0.1:${port}`;
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  let child: ChildProcess | undefined;
  const launch = async () => {
    const started = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    child = started;
    let exited = false;
    started.once("exit", () => {
      exited = true;
    });
    await waitUntil(async () => {
      // A server that could not bind exits at once; fail now instead of pinging for ten seconds.
      if (exited) throw new Error(`redis-server exited at start on port ${port}`);
      try {
        if (redis.status === "wait" || redis.status === "end") await redis.connect().catch(() => {});
        return (await redis.ping()) === "PONG";
      } catch {
        return false;
      }
    }, 15_000);
  };
  const kill = async () => {
    const current = child;
    if (current === undefined || current.exitCode !== null) return;
    await new Promise((resolve) => {
      current.on("exit", resolve);
      current.kill("SIGKILL");
    });
  };
  try {
    await launch();
  } catch (error) {
    redis.disconnect();
    await kill();
    throw error;
  }
  return {
    url,
    redis,
    kill,
    restart: launch,
    async stop() {
      redis.disconnect();
      await kill();
    },
  };
}

/** Runs the operator CLI (`pnpm genq-admin ...`) with extra environment; resolves with its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "apps/cli/src/main.ts"), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("exit", (code) => resolve({ code, output }));
  });
}
