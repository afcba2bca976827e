import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createSecretBox, type JobType, type Logger, parseKeyRing } from "@genq/core";
import {
  AssetRepository,
  BatchRepository,
  createPrismaClient,
  EconomyRepository,
  JobRepository,
  ProviderConfigRepository,
  pingDatabase,
  RetentionRepository,
  UserProviderKeyRepository,
  WebhookRepository,
} from "@genq/db";
import { createBatchProgressReader, EventLog, EventPublisher, EventWatches } from "@genq/events";
import { createJobLifecycle } from "@genq/lifecycle";
import { GenqMetrics } from "@genq/metrics";
import { ResultCache } from "@genq/providers";
import { createRedisConnection, JobQueues } from "@genq/queue";
import { QuotaLedger, resolvePlans } from "@genq/quota";
import {
  BatchDispatcher,
  createJobImageStore,
  EconomyScheduler,
  startMaintenance,
  startProviderAdminWorker,
  startWorkerPool,
  sweepExpiredAssets,
  sweepExpiredData,
  type WorkerPool,
} from "@genq/runner";
import { createStorage, storageConfigFromEnv } from "@genq/storage";
import { type RunningWebhookWorker, startWebhookWorker, WebhookQueue } from "@genq/webhooks";
import type { WorkerEnv } from "./env.ts";
import { createWorkerRouter, type WorkerRouter } from "./providers.ts";

/** Sets the circuit gauge of every configured provider/model from the shared state. */
async function observeCircuits(metrics: GenqMetrics, routing: WorkerRouter): Promise<void> {
  const targets = [...routing.router.config().providers.values()].flatMap((deployment) =>
    [...deployment.models.keys()].map((model) => ({ provider: deployment.name, model })),
  );
  const stats = await routing.state.targetStats(targets).catch(() => []);
  for (const entry of stats) {
    for (const state of ["open", "half-open"] as const) {
      metrics.circuitState.set(
        { provider: entry.provider, model: entry.model, state },
        entry.circuit === state ? 1 : 0,
      );
    }
  }
}

/** The data retention the environment asks for; undefined when it keeps everything. */
function retentionPolicy(env: WorkerEnv) {
  const policy = {
    jobsDays: env.GENQ_RETENTION_JOBS_DAYS,
    providerCallsDays: env.GENQ_RETENTION_PROVIDER_CALLS_DAYS,
    webhookMessagesDays: env.GENQ_RETENTION_WEBHOOK_MESSAGES_DAYS,
    uploadsDays: env.GENQ_RETENTION_UPLOADS_DAYS,
  };
  return Object.values(policy).some((days) => days > 0) ? policy : undefined;
}

/** A running worker process's parts. */
export interface RunningWorker {
  pool: WorkerPool;
  /** Re-reads the providers file; a bad file keeps the current configuration. Undefined without a file. */
  reloadProviders: (() => Promise<{ ok: boolean }>) | undefined;
  /** The health server's port, when one runs. */
  healthPort: number | undefined;
  /** Graceful stop: no new jobs, in-flight ones get `GENQ_SHUTDOWN_TIMEOUT_MS`. */
  close(): Promise<{ drained: boolean }>;
}

/** Wires a worker from its configuration: database, queues, providers, pool, health. */
export async function startWorker(
  env: WorkerEnv,
  logger: Logger,
  /** Variables the providers file may interpolate (`${OPENAI_API_KEY}`). */
  environment: Record<string, string | undefined> = process.env,
): Promise<RunningWorker> {
  const db = createPrismaClient({
    connectionString: env.DATABASE_URL,
    maxConnections: env.GENQ_DATABASE_POOL_SIZE,
  });
  const redis = createRedisConnection({
    url: env.REDIS_URL,
    role: "producer",
    connectionName: "genq-worker",
  });
  redis.on("error", (error) => logger.warn({ err: error }, "redis connection error"));
  const overrides = {
    attempts: env.GENQ_JOB_ATTEMPTS,
    backoffMs: env.GENQ_RETRY_BACKOFF_MS,
    attemptTimeoutMs: env.GENQ_ATTEMPT_TIMEOUT_MS,
  };
  const queues = new JobQueues({
    connection: redis,
    prefix: env.GENQ_QUEUE_PREFIX,
    overrides: { text: overrides, image: overrides },
  });
  // Results of deterministic text requests, shared by every worker through Redis.
  const cacheSubscriber = env.GENQ_RESULT_CACHE_ENABLED
    ? createRedisConnection({ url: env.REDIS_URL, role: "subscriber", connectionName: "genq-cache" })
    : undefined;
  cacheSubscriber?.on("error", () => {});
  const resultCache =
    cacheSubscriber === undefined
      ? undefined
      : new ResultCache({
          redis,
          subscriber: cacheSubscriber,
          prefix: env.GENQ_QUEUE_PREFIX,
          textTtlMs: env.GENQ_RESULT_CACHE_TTL_MS,
          maxEntries: env.GENQ_RESULT_CACHE_MAX_ENTRIES,
          scope: env.GENQ_RESULT_CACHE_SHARED ? "shared" : "user",
        });
  await resultCache?.listen();
  // Live events: job events of running jobs, terminal and batch events after commit, each
  // only when someone listens to its job or batch (or the job streams text).
  const watchSubscriber = createRedisConnection({
    url: env.REDIS_URL,
    role: "subscriber",
    connectionName: "genq-events-watch",
  });
  watchSubscriber.on("error", () => {});
  const watches = new EventWatches({
    redis,
    subscriber: watchSubscriber,
    prefix: env.GENQ_QUEUE_PREFIX,
    onError: (error) => logger.warn({ err: error }, "live event watches: Redis error"),
  });
  await watches.start();
  const events = new EventPublisher({
    watches,
    log: new EventLog({
      redis,
      prefix: env.GENQ_QUEUE_PREFIX,
      maxLength: env.GENQ_EVENTS_MAX_LENGTH,
      retentionMs: env.GENQ_EVENTS_RETENTION_MS,
      finishedRetentionMs: env.GENQ_EVENTS_FINISHED_RETENTION_MS,
    }),
    logger,
    batchProgress: { read: createBatchProgressReader(db) },
  });
  const concurrency: Record<JobType, number> = {
    text: env.GENQ_TEXT_CONCURRENCY,
    image: env.GENQ_IMAGE_CONCURRENCY,
  };
  // Providers managed over the admin API, laid over the file (decision 0023).
  const secretBox =
    env.GENQ_ENCRYPTION_KEYS === undefined
      ? undefined
      : createSecretBox(parseKeyRing(env.GENQ_ENCRYPTION_KEYS));
  const providerConfig = new ProviderConfigRepository({ db, secretBox });
  const configSubscriber = createRedisConnection({
    url: env.REDIS_URL,
    role: "subscriber",
    connectionName: "genq-provider-config",
  });
  configSubscriber.on("error", () => {});
  const routing = await createWorkerRouter(env, redis, logger, environment, {
    repository: providerConfig,
    subscriber: configSubscriber,
    checkIntervalMs: env.GENQ_PROVIDER_CONFIG_CHECK_MS,
  });
  const providerAdmin = startProviderAdminWorker({
    repository: providerConfig,
    redisUrl: env.REDIS_URL,
    prefix: env.GENQ_QUEUE_PREFIX,
    logger,
  });
  // The worker only writes objects; links are signed by the API, which knows its public URL.
  const storage = createStorage(
    storageConfigFromEnv(env, { publicBaseUrl: "http://unused.invalid/v1/assets" }),
  );
  await storage.ensureReady();
  if (storage.driver === "local") {
    // Writes of killed workers stay in tmp/ (they never became objects); none lasts an hour.
    storage.removeStaleTemporaryFiles(3_600_000).then(
      (removed) => removed > 0 && logger.info({ removed }, "removed unfinished object writes"),
      (error: unknown) => logger.warn({ err: error }, "could not sweep unfinished object writes"),
    );
  }
  const assets = new AssetRepository({ db });
  const metrics = new GenqMetrics({ process: "worker" });
  // A job is never charged beyond its reservation; what a provider reported above it is logged and counted.
  const reportSettlementExcess = (excess: { kind: string; actual: number; held: number }) => {
    logger.warn(excess, "provider reported more usage than was reserved; charged the reservation only");
    metrics.quotaSettlementExcess.inc({ kind: excess.kind }, excess.actual - excess.held);
  };
  const quota = new QuotaLedger({
    db,
    plans: resolvePlans(env.GENQ_PLANS),
    preparedStatements: env.GENQ_DATABASE_PREPARED_STATEMENTS,
    onSettlementExcess: reportSettlementExcess,
  });
  const policy = retentionPolicy(env);
  const maintenance = await startMaintenance({
    redisUrl: env.REDIS_URL,
    prefix: env.GENQ_QUEUE_PREFIX,
    logger,
    tasks: [
      // Holds of jobs that finished without resolving them (a crash between commits of older code,
      // a process without a quota ledger). Queued jobs keep theirs: it is what their 202 promised.
      {
        name: "quota-reclaim",
        everyMs: 60_000,
        run: async () => ({ ...(await quota.reclaim()) }),
      },
      ...(env.GENQ_ASSET_RETENTION_DAYS > 0
        ? [
            {
              name: "asset-retention",
              everyMs: env.GENQ_MAINTENANCE_INTERVAL_MS,
              run: () => sweepExpiredAssets({ storage, assets }),
            },
          ]
        : []),
      ...(policy === undefined
        ? []
        : [
            {
              name: "data-retention",
              everyMs: env.GENQ_MAINTENANCE_INTERVAL_MS,
              run: async () => ({
                ...(await sweepExpiredData({
                  retention: new RetentionRepository({ db }),
                  storage,
                  policy,
                })),
              }),
            },
          ]),
    ],
  });
  // Webhooks: the outbox is written in every finishing transaction and queued after commit.
  const webhookRepository = new WebhookRepository({ db, publicUrl: env.GENQ_PUBLIC_URL });
  const webhookQueue = new WebhookQueue({ connection: redis, prefix: env.GENQ_QUEUE_PREFIX });
  const lifecycle = createJobLifecycle({
    db,
    events,
    webhooks: {
      repository: webhookRepository,
      queue: webhookQueue,
      onEnqueueError: (error) =>
        logger.warn({ err: error }, "webhook enqueue failed; the relay will queue it"),
    },
    onSettlementExcess: reportSettlementExcess,
    sql: { prepared: env.GENQ_DATABASE_PREPARED_STATEMENTS },
  });
  const pool = await startWorkerPool({
    metrics,
    redisUrl: env.REDIS_URL,
    jobs: new JobRepository({ db }),
    lifecycle,
    events,
    ...(resultCache === undefined ? {} : { resultCache }),
    queues,
    router: routing.router,
    quota,
    ...(env.GENQ_ENCRYPTION_KEYS === undefined
      ? {}
      : {
          userKeys: new UserProviderKeyRepository({
            db,
            secretBox: secretBox ?? createSecretBox(parseKeyRing(env.GENQ_ENCRYPTION_KEYS)),
          }),
        }),
    images: createJobImageStore({ storage, assets, retentionDays: env.GENQ_ASSET_RETENTION_DAYS }),
    logger,
    assignments: env.GENQ_WORKER_QUEUES.filter((type) => type !== "webhook").map((type) => ({
      type,
      concurrency: concurrency[type],
    })),
    lockDurationMs: env.GENQ_LOCK_DURATION_MS,
    stalledIntervalMs: env.GENQ_STALLED_INTERVAL_MS,
    maxStalledCount: env.GENQ_MAX_STALLED_COUNT,
    reconcileIntervalMs: env.GENQ_RECONCILE_INTERVAL_MS,
    tenantCap: env.GENQ_TENANT_CONCURRENCY,
    postponeDeadlineMs: env.GENQ_JOB_POSTPONE_DEADLINE_MS,
  });

  // Releases held-back batch items fairly across users; woken when jobs finish (room under the caps).
  const dispatcher = new BatchDispatcher({
    batches: new BatchRepository({ db }),
    queues,
    logger,
    tenantCap: env.GENQ_BATCH_TENANT_CAP,
    intervalMs: env.GENQ_BATCH_DISPATCH_INTERVAL_MS,
  });
  for (const worker of pool.workers) {
    worker.on("completed", () => dispatcher.wake());
    worker.on("failed", () => dispatcher.wake());
  }
  dispatcher.start();

  // Economy batches: items go to the providers' batch APIs; results finish through the lifecycle.
  const economy = new EconomyScheduler({
    economy: new EconomyRepository({ db }),
    batches: new BatchRepository({ db }),
    lifecycle,
    router: routing.router,
    queues,
    logger,
    quota,
    fallback: env.GENQ_ECONOMY_FALLBACK,
    intervalMs: env.GENQ_ECONOMY_INTERVAL_MS,
    firstPollMs: env.GENQ_ECONOMY_POLL_BASE_MS,
    pollBaseMs: env.GENQ_ECONOMY_POLL_BASE_MS,
    pollMaxMs: env.GENQ_ECONOMY_POLL_MAX_MS,
    metrics,
  });
  economy.start();

  // Webhook deliveries and the outbox relay (nothing owed is lost when Redis loses its data).
  let webhooks: RunningWebhookWorker | undefined;
  if (env.GENQ_WORKER_QUEUES.includes("webhook")) {
    webhooks = await startWebhookWorker({
      redisUrl: env.REDIS_URL,
      prefix: env.GENQ_QUEUE_PREFIX,
      repository: webhookRepository,
      queue: webhookQueue,
      acquireLease: (name, ttlMs) => queues.acquireLease(name, ttlMs),
      logger,
      concurrency: env.GENQ_WEBHOOK_CONCURRENCY,
      perTenantConcurrency: env.GENQ_WEBHOOK_TENANT_CONCURRENCY,
      perEndpointConcurrency: env.GENQ_WEBHOOK_ENDPOINT_CONCURRENCY,
      disableFailingAfterMs: env.GENQ_WEBHOOK_DISABLE_AFTER_MS,
      timeoutMs: env.GENQ_WEBHOOK_TIMEOUT_MS,
      retryScheduleMs: env.GENQ_WEBHOOK_RETRY_SCHEDULE_MS,
      allowlist: env.GENQ_WEBHOOK_ALLOWED_HOSTS,
      relayIntervalMs: env.GENQ_WEBHOOK_RELAY_INTERVAL_MS,
      metrics,
    });
  }

  let health: Server | undefined;
  if (env.GENQ_WORKER_HEALTH_PORT > 0) {
    const metricsToken =
      env.GENQ_METRICS_TOKEN === undefined ? undefined : Buffer.from(env.GENQ_METRICS_TOKEN);
    health = createServer((request, response) => {
      if (request.url === "/metrics") {
        if (metricsToken !== undefined && !bearerMatches(request.headers.authorization, metricsToken)) {
          response
            .writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer" })
            .end(
              '{"error":{"code":"unauthorized","message":"send Authorization: Bearer <GENQ_METRICS_TOKEN>"}}',
            );
          return;
        }
        observeCircuits(metrics, routing)
          .then(() => metrics.render())
          .then(
            ({ contentType, body }) => response.writeHead(200, { "content-type": contentType }).end(body),
            () => response.writeHead(500).end(),
          );
        return;
      }
      const ready = request.url === "/health/ready";
      const probe = ready ? Promise.all([redis.ping(), pingDatabase(db)]) : Promise.resolve();
      probe.then(
        () => response.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}'),
        () => response.writeHead(503, { "content-type": "application/json" }).end('{"status":"unavailable"}'),
      );
    });
    const server = health;
    // Loopback unless told otherwise: metrics name providers, models and error rates.
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(env.GENQ_WORKER_HEALTH_PORT, env.GENQ_WORKER_HEALTH_HOST, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }
  const address = health?.address();

  const source = routing.source;
  return {
    pool,
    reloadProviders: source === undefined ? undefined : () => source.reload(),
    healthPort: typeof address === "object" && address !== null ? address.port : undefined,
    async close() {
      health?.close();
      await providerAdmin.close();
      await routing.close();
      configSubscriber.disconnect();
      await dispatcher.stop();
      await economy.stop();
      const result = await pool.close({ timeoutMs: env.GENQ_SHUTDOWN_TIMEOUT_MS });
      await maintenance.close();
      await webhooks?.close();
      await webhookQueue.close();
      events.close();
      await watches.close();
      watchSubscriber.disconnect();
      await resultCache?.close();
      cacheSubscriber?.disconnect();
      await storage.close();
      await queues.close();
      redis.disconnect();
      await db.$disconnect();
      return result;
    },
  };
}

/** True when an `Authorization` header is `Bearer <expected>` (compared in constant time). */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  if (header === undefined || !/^Bearer\s+/i.test(header)) return false;
  const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
  return given.length === expected.length && timingSafeEqual(given, expected);
}
