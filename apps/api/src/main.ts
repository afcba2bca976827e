import { randomBytes } from "node:crypto";
import {
  createLogger,
  createSecretBox,
  describeStartupError,
  exitWithStartupFailure,
  parseKeyRing,
  reportReady,
  stopWhenParentExits,
} from "@genq/core";
import { assertDatabaseReachable, createPrismaClient } from "@genq/db";
import { GenqMetrics } from "@genq/metrics";
import { assertRedisReachable, createRedisConnection, JobQueues } from "@genq/queue";
import { QuotaLedger, resolvePlans } from "@genq/quota";
import { createStorage, storageConfigFromEnv } from "@genq/storage";
import { otlpTracesEndpoint, startTracing } from "@genq/telemetry";
import { buildApp } from "./app.ts";
import { loadApiEnv } from "./env.ts";
import { BULL_BOARD_PATH } from "./plugins/bull-board.ts";

/** The ports this process listens on, by the variable that sets each (for a "port in use" message). */
const ports: Record<string, number> = {};

async function main(): Promise<void> {
  const env = loadApiEnv();
  ports.PORT = env.PORT;
  const logger = createLogger({
    name: "genq-api",
    level: env.LOG_LEVEL,
    ...(env.LOG_PRETTY === undefined ? {} : { pretty: env.LOG_PRETTY }),
  });
  const tracesEndpoint = otlpTracesEndpoint(env);
  const tracing =
    tracesEndpoint === undefined
      ? undefined
      : startTracing({ serviceName: "genq-api", endpoint: tracesEndpoint });
  await assertRedisReachable(env.REDIS_URL);
  await assertDatabaseReachable(env.DATABASE_URL);

  let adminPassword = env.GENQ_ADMIN_PASSWORD;
  if (adminPassword === undefined) {
    // Development only (production refuses to start without one): a fresh password per run.
    adminPassword = randomBytes(12).toString("base64url");
    process.stdout.write(
      `Bull Board: no GENQ_ADMIN_PASSWORD set, so this run uses user "${env.GENQ_ADMIN_USER}" with password "${adminPassword}"\n`,
    );
  }

  const db = createPrismaClient({
    connectionString: env.DATABASE_URL,
    maxConnections: env.GENQ_DATABASE_POOL_SIZE,
    connectionTimeoutMs: env.GENQ_DATABASE_CONNECT_TIMEOUT_MS,
  });
  const redis = createRedisConnection({ url: env.REDIS_URL, role: "producer", connectionName: "genq-api" });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  const queues = new JobQueues({
    connection: redis,
    prefix: env.GENQ_QUEUE_PREFIX,
    overrides: {
      text: { attempts: env.GENQ_JOB_ATTEMPTS, backoffMs: env.GENQ_RETRY_BACKOFF_MS },
      image: { attempts: env.GENQ_JOB_ATTEMPTS, backoffMs: env.GENQ_RETRY_BACKOFF_MS },
    },
  });
  const publicUrl =
    env.GENQ_PUBLIC_URL ?? `http://${env.HOST.includes(":") ? `[${env.HOST}]` : env.HOST}:${env.PORT}`;
  const storage = createStorage(
    storageConfigFromEnv(env, { publicBaseUrl: `${publicUrl.replace(/\/$/, "")}/v1/assets` }),
  );
  await storage.ensureReady();
  const app = await buildApp({
    metrics: new GenqMetrics({ process: "api" }),
    ...(env.GENQ_METRICS_TOKEN === undefined ? {} : { metricsToken: env.GENQ_METRICS_TOKEN }),
    ...(env.GENQ_ENCRYPTION_KEYS === undefined
      ? {}
      : { secretBox: createSecretBox(parseKeyRing(env.GENQ_ENCRYPTION_KEYS)) }),
    quota: new QuotaLedger({
      db,
      plans: resolvePlans(env.GENQ_PLANS),
      preparedStatements: env.GENQ_DATABASE_PREPARED_STATEMENTS,
    }),
    preparedStatements: env.GENQ_DATABASE_PREPARED_STATEMENTS,
    storage,
    assetUrlTtlSeconds: env.GENQ_ASSET_URL_TTL_SECONDS,
    db,
    redis,
    queues,
    logger,
    admin: {
      user: env.GENQ_ADMIN_USER,
      password: adminPassword,
      loginLimits: {
        maxFailuresPerIp: env.GENQ_ADMIN_MAX_FAILURES_PER_IP,
        maxFailuresPerUser: env.GENQ_ADMIN_MAX_FAILURES_PER_USER,
        windowMs: env.GENQ_ADMIN_FAILURE_WINDOW_MS,
      },
    },
    bodyLimitBytes: env.GENQ_BODY_LIMIT_BYTES,
    publicUrl: env.GENQ_PUBLIC_URL ?? "",
    docs: env.GENQ_DOCS_ENABLED,
    trustProxy: env.GENQ_TRUST_PROXY,
    submitRateLimitPerMinute: env.GENQ_SUBMIT_RATE_LIMIT,
    writeRateLimitPerMinute: env.GENQ_WRITE_RATE_LIMIT,
    apiKeyCacheTtlMs: env.GENQ_API_KEY_CACHE_TTL_MS,
    uploadLimitBytes: env.GENQ_UPLOAD_LIMIT_BYTES,
    webhookMaxEndpointsPerUser: env.GENQ_WEBHOOK_MAX_ENDPOINTS_PER_USER,
    ...(env.GENQ_WEBHOOK_ALLOWED_HOSTS === undefined
      ? {}
      : { webhookAllowlist: env.GENQ_WEBHOOK_ALLOWED_HOSTS }),
    events: {
      heartbeatMs: env.GENQ_SSE_HEARTBEAT_MS,
      maxStreams: env.GENQ_SSE_MAX_STREAMS,
      maxStreamsPerUser: env.GENQ_SSE_MAX_STREAMS_PER_USER,
      maxLength: env.GENQ_EVENTS_MAX_LENGTH,
      retentionMs: env.GENQ_EVENTS_RETENTION_MS,
      finishedRetentionMs: env.GENQ_EVENTS_FINISHED_RETENTION_MS,
    },
    waits: { maxWaits: env.GENQ_WAIT_MAX, maxWaitsPerUser: env.GENQ_WAIT_MAX_PER_USER },
    openaiBatchTier: env.GENQ_OPENAI_BATCH_TIER,
    batchBodyLimitBytes: env.GENQ_BATCH_BODY_LIMIT_BYTES,
    batchJsonBodyLimitBytes: env.GENQ_BATCH_JSON_BODY_LIMIT_BYTES,
    batchLineLimitBytes: env.GENQ_BATCH_LINE_LIMIT_BYTES,
    batchUploadsPerUser: env.GENQ_BATCH_UPLOADS_PER_USER,
  });
  app.addHook("onClose", async () => {
    await storage.close();
    await queues.close();
    redis.disconnect();
    await db.$disconnect();
    await tracing?.shutdown().catch(() => {});
  });

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  stopWhenParentExits(() => shutdown("parent exited"));

  await app.listen({ host: env.HOST, port: env.PORT });
  const base = `http://${env.HOST === "0.0.0.0" ? "127.0.0.1" : env.HOST}:${env.PORT}`;
  logger.info(
    { api: `${base}/v1`, docs: `${base}/docs`, queues: `${base}${BULL_BOARD_PATH}` },
    "genq API listening",
  );
  reportReady("genq-api");
}

main().catch((error: unknown) => exitWithStartupFailure("genq-api", describeStartupError(error, ports)));
