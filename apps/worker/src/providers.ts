import type { Logger } from "@genq/core";
import type { ProviderConfigRepository } from "@genq/db";
import {
  buildRouterConfig,
  type ConfigSource,
  createConfigSource,
  createLayeredConfigSource,
  defaultProvidersData,
  defaultProvidersFile,
  EMPTY_PROVIDER_OVERLAY,
  type FailureCounter,
  type ProviderBaseLayer,
  ProviderRouter,
  publishProviderBaseLayer,
  publishRouterCatalog,
  RedisRouterState,
  type RouterConfig,
  type RouterState,
  readProvidersLayer,
} from "@genq/providers";
import { providerConfigChannel } from "@genq/queue";
import { watchProviderConfig } from "@genq/runner";
import type { Redis } from "ioredis";
import type { WorkerEnv } from "./env.ts";

/**
 * A failure counter shared by every worker process, so the mock's `failTimes`
 * counts attempts of one job wherever they run.
 */
export function createRedisFailureCounter(redis: Redis, prefix: string): FailureCounter {
  return {
    async increment(key) {
      const redisKey = `${prefix}:mock-failures:${key}`;
      const [[, count]] = (await redis.multi().incr(redisKey).expire(redisKey, 3_600).exec()) as [
        [null, number],
      ];
      return count;
    },
  };
}

/** Resolves when the connection is ready, or after `timeoutMs` (then the "ready" listener publishes later). */
function waitForReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      redis.off("ready", done);
      resolve();
    }
    redis.once("ready", done);
  });
}

/** How often a worker re-publishes its provider catalog for the admin API. */
const CATALOG_REFRESH_MS = 15_000;

/** The worker's router and where its configuration comes from. */
export interface WorkerRouter {
  router: ProviderRouter;
  /** The shared router state (circuits, key limits), for metrics. */
  state: RouterState;
  /** Reload the providers file (SIGHUP) and the database layer; undefined with neither. */
  source: ConfigSource | undefined;
  close(): Promise<void>;
}

/** The database layer of the provider configuration (decision 0023). */
export interface ManagedProviderConfig {
  repository: ProviderConfigRepository;
  /** A connection in subscriber mode for change announcements; closed by the caller. */
  subscriber: Redis;
  /** How often the version is checked for a missed announcement. */
  checkIntervalMs: number;
}

/**
 * The provider router of a worker: from the providers file when
 * `GENQ_PROVIDERS_FILE` is set (reloadable), else from the environment
 * (`OPENAI_API_KEY`, ...), with the database's providers, keys, models and routes
 * laid over it when `managed` is given (decision 0023). Its state (circuits,
 * limits, keys) lives in Redis, shared with every other worker; its configuration
 * (and its base layer, secrets masked) is published there for the API.
 */
export async function createWorkerRouter(
  env: WorkerEnv,
  redis: Redis,
  logger: Logger,
  environment: Record<string, string | undefined>,
  managed?: ManagedProviderConfig,
): Promise<WorkerRouter> {
  const mockFailureCounter = createRedisFailureCounter(redis, env.GENQ_QUEUE_PREFIX);
  const imageDownload = {
    maxBytes: env.GENQ_IMAGE_DOWNLOAD_MAX_BYTES,
    timeoutMs: env.GENQ_IMAGE_DOWNLOAD_TIMEOUT_MS,
    ...(env.GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS === undefined
      ? {}
      : { allowlist: env.GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS }),
  };
  const providersFile = env.GENQ_PROVIDERS_FILE;
  const settings = providerSettingsFromEnv(env);
  const loadBase = async (): Promise<ProviderBaseLayer> => {
    if (providersFile !== undefined) return readProvidersLayer(providersFile, environment);
    // The source text only feeds the version hash; it is never logged.
    return {
      file: defaultProvidersFile(settings),
      data: defaultProvidersData(settings),
      source: JSON.stringify(settings),
    };
  };
  const source = await createLayeredConfigSource({
    loadBase,
    loadOverlay: async () =>
      managed === undefined ? EMPTY_PROVIDER_OVERLAY : managed.repository.loadLayer("open"),
    build: (file, options) => buildRouterConfig(file, { ...options, mockFailureCounter, imageDownload }),
    logger,
  });
  const current = () => source.current();
  const publish = async (config: RouterConfig) => {
    try {
      await publishProviderBaseLayer(redis, env.GENQ_QUEUE_PREFIX, source.baseData());
      await publishRouterCatalog(redis, env.GENQ_QUEUE_PREFIX, config);
    } catch (error) {
      logger.warn({ err: error }, "could not publish the provider catalog for the admin API");
    }
  };
  source.onChange((config) => void publish(config));

  // Watching the file: its own source notices changes, the layered one rebuilds.
  const fileWatch =
    providersFile !== undefined && env.GENQ_PROVIDERS_WATCH
      ? await createConfigSource({
          path: providersFile,
          env: environment,
          build: (file, text) => buildRouterConfig(file, { source: text, mockFailureCounter, imageDownload }),
          logger,
          watch: true,
        })
      : undefined;
  fileWatch?.onChange(() => void source.reload());

  const watch =
    managed === undefined
      ? undefined
      : await watchProviderConfig({
          source,
          currentVersion: () => managed.repository.currentVersion(),
          subscriber: managed.subscriber,
          channel: providerConfigChannel(env.GENQ_QUEUE_PREFIX),
          intervalMs: managed.checkIntervalMs,
          logger,
        });

  // Published when the connection is (again) ready and every so often, so the admin API
  // sees it after a Redis restart or flush too.
  const republish = () => {
    if (redis.status === "ready") void publish(current());
  };
  redis.on("ready", republish);
  const timer = setInterval(republish, CATALOG_REFRESH_MS);
  timer.unref();
  // Publish before the worker reports ready, so the API can check jobs against it at once.
  await waitForReady(redis, 5_000);
  if (redis.status === "ready") await publish(current());

  const state = new RedisRouterState({
    redis,
    prefix: env.GENQ_QUEUE_PREFIX,
    breaker: () => current().breaker,
  });
  return {
    router: new ProviderRouter({ config: current, state, logger }),
    state,
    source: providersFile === undefined && managed === undefined ? undefined : source,
    async close() {
      clearInterval(timer);
      redis.off("ready", republish);
      fileWatch?.close();
      await watch?.close();
      source.close();
    },
  };
}

/** The providers the environment configures, in the shape of `defaultProvidersFile`'s input. */
function providerSettingsFromEnv(env: WorkerEnv) {
  return {
    defaultProvider: env.GENQ_DEFAULT_PROVIDER,
    // In production the mock would give free, fault-injectable completions to anyone who asks.
    ...((env.GENQ_MOCK_ENABLED ?? env.NODE_ENV !== "production")
      ? { mock: { latencyMs: env.GENQ_MOCK_LATENCY_MS, failureRate: env.GENQ_MOCK_FAILURE_RATE } }
      : {}),
    ...(env.OPENAI_API_KEY === undefined
      ? {}
      : {
          openai: {
            apiKey: env.OPENAI_API_KEY,
            defaultModel: env.OPENAI_DEFAULT_MODEL,
            ...(env.OPENAI_BASE_URL === undefined ? {} : { baseUrl: env.OPENAI_BASE_URL }),
            ...(env.GENQ_BYO_PROVIDERS.includes("openai") ? { acceptsUserKeys: true } : {}),
          },
        }),
    ...(env.ANTHROPIC_API_KEY === undefined
      ? {}
      : {
          anthropic: {
            apiKey: env.ANTHROPIC_API_KEY,
            defaultModel: env.ANTHROPIC_DEFAULT_MODEL,
            ...(env.ANTHROPIC_BASE_URL === undefined ? {} : { baseUrl: env.ANTHROPIC_BASE_URL }),
            ...(env.GENQ_BYO_PROVIDERS.includes("anthropic") ? { acceptsUserKeys: true } : {}),
          },
        }),
    ...(env.GEMINI_API_KEY === undefined
      ? {}
      : {
          gemini: {
            apiKey: env.GEMINI_API_KEY,
            defaultModel: env.GEMINI_DEFAULT_MODEL,
            ...(env.GEMINI_BASE_URL === undefined ? {} : { baseUrl: env.GEMINI_BASE_URL }),
            ...(env.GENQ_BYO_PROVIDERS.includes("gemini") ? { acceptsUserKeys: true } : {}),
          },
        }),
  };
}
