import { randomUUID } from "node:crypto";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { BatchTier, SecretBox } from "@genq/core";
import type { Database } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import type { JobQueues } from "@genq/queue";
import type { QuotaLedger } from "@genq/quota";
import type { LocalStorage, ObjectStorage } from "@genq/storage";
import type { WebhookAllowlist } from "@genq/webhooks";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import { contractTransform } from "./openapi/contract-transform.ts";
import { finishDocument } from "./openapi/finish-document.ts";
import { apiKeyAuthPlugin } from "./plugins/api-key-auth.ts";
import { BULL_BOARD_PATH, bullBoardPlugin } from "./plugins/bull-board.ts";
import { errorHandlerPlugin, frameworkErrorHandler } from "./plugins/error-handler.ts";
import { metricsPlugin } from "./plugins/metrics.ts";
import type { OperatorCredentials } from "./plugins/operator-auth.ts";
import { resourcesPlugin } from "./plugins/resources.ts";
import { refuseUnstorableInput } from "./plugins/storable-input.ts";
import { submissionRateLimitPlugin } from "./plugins/submission-rate-limit.ts";
import { createJobRedrive } from "./redrive-job.ts";
import { adminAccountRoutes } from "./routes/admin-account-routes.ts";
import { adminCacheRoutes } from "./routes/admin-cache-routes.ts";
import { adminJobRoutes } from "./routes/admin-job-routes.ts";
import { adminProviderConfigRoutes } from "./routes/admin-provider-config-routes.ts";
import { adminProviderRoutes } from "./routes/admin-provider-routes.ts";
import { adminUsageRoutes } from "./routes/admin-usage-routes.ts";
import { assetRoutes } from "./routes/asset-routes.ts";
import { batchRoutes, DEFAULT_BATCH_BODY_LIMIT_BYTES } from "./routes/batch-routes.ts";
import { eventRoutes } from "./routes/event-routes.ts";
import { healthRoutes } from "./routes/health-routes.ts";
import { jobRoutes } from "./routes/job-routes.ts";
import { openAIRoutes } from "./routes/openai-routes.ts";
import { providerKeyRoutes } from "./routes/provider-key-routes.ts";
import { redriveRoutes } from "./routes/redrive-routes.ts";
import { DEFAULT_UPLOAD_LIMIT_BYTES, uploadRoutes } from "./routes/upload-routes.ts";
import { usageRoutes } from "./routes/usage-routes.ts";
import { webhookRoutes } from "./routes/webhook-routes.ts";

/** Options for {@link buildApp}. */
export interface AppOptions {
  db: Database;
  /** A producer connection (fails fast while Redis is down). */
  redis: Redis;
  queues: JobQueues;
  /** Fastify's logger option: pino options, a pino instance, or false. */
  logger?: FastifyServerOptions["logger"] | FastifyServerOptions["loggerInstance"];
  /** Operator credentials for Bull Board, /v1/admin and /metrics, with limits on failed logins. */
  admin: OperatorCredentials;
  bodyLimitBytes?: number;
  /** Prefix of links in responses, e.g. https://genq.example.com; relative links when empty. */
  publicUrl?: string;
  docs?: boolean;
  trustProxy?: boolean;
  /** Prometheus metrics, served at /metrics (to the operator, or to `metricsToken`); absent: no /metrics. */
  metrics?: GenqMetrics;
  /** A bearer token that reads /metrics besides the operator's Basic credentials (`GENQ_METRICS_TOKEN`). */
  metricsToken?: string;
  /** Plans and quotas: submissions that cannot fit are refused (429 quota_exceeded); `/v1/usage`. */
  quota?: QuotaLedger;
  /**
   * Send the hot-path statements (submit, cancels' transitions) as named prepared statements (default
   * true); false sends the same SQL unnamed, for PgBouncer in transaction mode older than 1.21
   * (`GENQ_DATABASE_PREPARED_STATEMENTS`).
   */
  preparedStatements?: boolean;
  /** Object storage of image jobs; the local driver's objects are served under /v1/assets. */
  storage?: ObjectStorage;
  /** Lifetime of image links minted when a job is read. Default 3600. */
  assetUrlTtlSeconds?: number;
  /** Submissions per API key per minute (Redis-backed, shared by all API processes); 0 or absent: unlimited. */
  submitRateLimitPerMinute?: number;
  /**
   * Every other write under /v1 (POST, PUT, PATCH, DELETE) per API key per minute, one budget over all
   * those routes (Redis-backed, shared by all API processes); 0 or absent: unlimited.
   */
  writeRateLimitPerMinute?: number;
  /** The largest image `POST /v1/uploads` accepts, in bytes. Default 20 MiB. */
  uploadLimitBytes?: number;
  /**
   * Live events (SSE): heartbeat interval (default 15 s), open streams per process
   * (default 1,000) and per user across processes (default 20), and the bounds of the streams this process writes (default
   * 1,000 entries, one hour).
   */
  events?: {
    heartbeatMs?: number;
    maxStreams?: number;
    maxStreamsPerUser?: number;
    maxLength?: number;
    retentionMs?: number;
    finishedRetentionMs?: number;
  };
  /** `Prefer: wait` on `POST /v1/jobs`: waits per process (default 500) and per user over all processes (default 10). */
  waits?: { maxWaits?: number; maxWaitsPerUser?: number; checkIntervalMs?: number };
  /** The tier OpenAI-compatible batches run on (`GENQ_OPENAI_BATCH_TIER`); default online. */
  openaiBatchTier?: BatchTier | undefined;
  /** The largest JSONL `POST /v1/batches` body (streamed), in bytes. Default 64 MiB. */
  batchBodyLimitBytes?: number;
  /** The largest JSON `POST /v1/batches` body (parsed in memory), in bytes. Default 16 MiB. */
  batchJsonBodyLimitBytes?: number;
  /** The longest line of a JSONL batch body, in bytes. Default 1 MiB. */
  batchLineLimitBytes?: number;
  /** Batch uploads one user may have in progress at once (over all API processes). Default 2. */
  batchUploadsPerUser?: number;
  /**
   * Seals users' own provider keys (`/v1/provider-keys`); build it with
   * `createSecretBox(parseKeyRing(env.GENQ_ENCRYPTION_KEYS))`. Absent: those routes answer 503.
   */
  secretBox?: SecretBox;
  /**
   * How long each API process trusts a resolved API key without asking Postgres.
   * Revoking a key or changing its user through the admin API evicts it in every
   * process at once (Redis pub/sub); a change made elsewhere (the CLI) waits for
   * the TTL. Default 0: every request asks Postgres.
   */
  apiKeyCacheTtlMs?: number;
  /**
   * Private hosts webhook URLs may name anyway (`parseWebhookAllowlist(env.GENQ_WEBHOOK_ALLOWED_HOSTS)`);
   * absent: only public addresses.
   */
  webhookAllowlist?: WebhookAllowlist;
  /** The most webhook endpoints one user may have (`GENQ_WEBHOOK_MAX_ENDPOINTS_PER_USER`); default 20. */
  webhookMaxEndpointsPerUser?: number;
}

/**
 * Builds the genq API: /v1 (API-key auth), /docs (OpenAPI), /admin/queues (Bull
 * Board, operator auth) and /health. It does not listen; see `main.ts`.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const loggerOption =
    options.logger !== undefined && typeof options.logger === "object" && "child" in options.logger
      ? { loggerInstance: options.logger as FastifyServerOptions["loggerInstance"] }
      : { logger: (options.logger as FastifyServerOptions["logger"]) ?? false };
  const app = Fastify({
    ...loggerOption,
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    trustProxy: options.trustProxy ?? false,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    // Errors never echo what the client sent beyond what the handler chooses.
    return503OnClosing: true,
    // Malformed URLs are refused by the router itself; answer them in genq's error body too.
    frameworkErrors: frameworkErrorHandler,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  refuseUnstorableInput(app);

  await app.register(errorHandlerPlugin);
  await app.register(resourcesPlugin, {
    db: options.db,
    redis: options.redis,
    queues: options.queues,
    storage: options.storage,
    assetUrlTtlSeconds: options.assetUrlTtlSeconds,
    quota: options.quota,
    preparedStatements: options.preparedStatements,
    events: options.events,
    webhookAllowlist: options.webhookAllowlist,
    webhookMaxEndpointsPerUser: options.webhookMaxEndpointsPerUser,
    publicUrl: options.publicUrl,
  });

  if (options.docs ?? true) {
    await app.register(fastifySwagger, {
      openapi: {
        openapi: "3.1.0",
        info: {
          title: "genq API",
          version: "1.0.0",
          description:
            "Submit prioritized AI generation jobs and read their results. Authenticate with `Authorization: Bearer <api key>`.",
        },
        components: {
          securitySchemes: {
            apiKey: { type: "http", scheme: "bearer" },
            operator: { type: "http", scheme: "basic" },
          },
        },
        security: [{ apiKey: [] }],
      },
      // The document is contract/openapi.json (`pnpm contract:write`); see docs/api.md, "Writing a route".
      transform: contractTransform,
      transformObject: finishDocument,
    });
    await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  }

  if (options.metrics !== undefined) {
    await app.register(metricsPlugin, {
      metrics: options.metrics,
      operator: options.admin,
      token: options.metricsToken,
    });
  }
  await app.register(healthRoutes);
  await app.register(
    async (v1) => {
      await v1.register(apiKeyAuthPlugin, { cacheTtlMs: options.apiKeyCacheTtlMs });
      await v1.register(submissionRateLimitPlugin, {
        perMinute: options.submitRateLimitPerMinute ?? 0,
        writesPerMinute: options.writeRateLimitPerMinute ?? 0,
      });
      await v1.register(jobRoutes, {
        publicUrl: options.publicUrl ?? "",
        metrics: options.metrics,
        waits: options.waits,
      });
      await v1.register(batchRoutes, {
        publicUrl: options.publicUrl ?? "",
        bodyLimitBytes: options.batchBodyLimitBytes ?? DEFAULT_BATCH_BODY_LIMIT_BYTES,
        jsonBodyLimitBytes: options.batchJsonBodyLimitBytes,
        lineLimitBytes: options.batchLineLimitBytes,
        uploadsPerUser: options.batchUploadsPerUser,
      });
      await v1.register(eventRoutes, {
        heartbeatMs: options.events?.heartbeatMs,
        maxStreams: options.events?.maxStreams,
        maxStreamsPerUser: options.events?.maxStreamsPerUser,
      });
      await v1.register(usageRoutes);
      await v1.register(webhookRoutes, { publicUrl: options.publicUrl ?? "" });
      await v1.register(uploadRoutes, { limitBytes: options.uploadLimitBytes ?? DEFAULT_UPLOAD_LIMIT_BYTES });
      await v1.register(providerKeyRoutes, { secretBox: options.secretBox });
      await v1.register(redriveRoutes, {
        publicUrl: options.publicUrl ?? "",
        redrive: createJobRedrive(app),
      });
    },
    { prefix: "/v1" },
  );
  // OpenAI's Files and Batches API, for the official SDK (`baseURL: <genq>/openai/v1`).
  await app.register(
    async (openai) => {
      await openai.register(apiKeyAuthPlugin, { cacheTtlMs: options.apiKeyCacheTtlMs });
      await openai.register(submissionRateLimitPlugin, {
        perMinute: options.submitRateLimitPerMinute ?? 0,
        writesPerMinute: options.writeRateLimitPerMinute ?? 0,
      });
      const tier = options.openaiBatchTier ?? "online";
      await openai.register(openAIRoutes, { tierFor: () => tier });
    },
    { prefix: "/openai/v1" },
  );
  if (options.storage?.driver === "local") {
    await app.register(assetRoutes, { storage: options.storage as LocalStorage, prefix: "/v1/assets" });
  }
  await app.register(adminUsageRoutes, { ...options.admin, prefix: "/v1/admin" });
  await app.register(adminProviderRoutes, { ...options.admin, prefix: "/v1/admin" });
  await app.register(adminProviderConfigRoutes, {
    ...options.admin,
    secretBox: options.secretBox,
    prefix: "/v1/admin",
  });
  await app.register(adminAccountRoutes, { ...options.admin, prefix: "/v1/admin" });
  await app.register(adminCacheRoutes, { ...options.admin, prefix: "/v1/admin" });
  await app.register(adminJobRoutes, {
    ...options.admin,
    prefix: "/v1/admin",
    publicUrl: options.publicUrl ?? "",
    redrive: createJobRedrive(app),
  });
  await app.register(bullBoardPlugin, { ...options.admin, redrive: createJobRedrive(app) });
  app.log.debug({ bullBoard: BULL_BOARD_PATH }, "routes registered");
  return app;
}
