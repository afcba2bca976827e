import type { Logger } from "@genq/core";
import {
  buildRouterConfig,
  type ConfigSource,
  createConfigSource,
  defaultProvidersFile,
  type FailureCounter,
  ProviderRouter,
  publishRouterCatalog,
  RedisRouterState,
  type RouterConfig,
  type RouterState,
} from "@genq/providers";
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
  /** Present when a providers file is configured: reload it (SIGHUP) or stop watching it. */
  source: ConfigSource | undefined;
  close(): void;
}

/**
 * The provider router of a worker: from the providers file when
 * `GENQ_PROVIDERS_FILE` is set (reloadable), else from the environment
 * (`OPENAI_API_KEY`, ...). Its state (circuits, limits, keys) lives in Redis,
 * shared with every other worker; its configuration is published there for the API.
 */
export async function createWorkerRouter(
  env: WorkerEnv,
  redis: Redis,
  logger: Logger,
  environment: Record<string, string | undefined>,
): Promise<WorkerRouter> {
  const mockFailureCounter = createRedisFailureCounter(redis, env.GENQ_QUEUE_PREFIX);
  const imageDownload = {
    maxBytes: env.GENQ_IMAGE_DOWNLOAD_MAX_BYTES,
    timeoutMs: env.GENQ_IMAGE_DOWNLOAD_TIMEOUT_MS,
    ...(env.GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS === undefined
      ? {}
      : { allowlist: env.GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS }),
  };
  const publish = (config: RouterConfig) =>
    publishRouterCatalog(redis, env.GENQ_QUEUE_PREFIX, config).catch((error: unknown) =>
      logger.warn({ err: error }, "could not publish the provider catalog for the admin API"),
    );

  let current: () => RouterConfig;
  let source: ConfigSource | undefined;
  if (env.GENQ_PROVIDERS_FILE !== undefined) {
    source = await createConfigSource({
      path: env.GENQ_PROVIDERS_FILE,
      env: environment,
      build: (file, text) => buildRouterConfig(file, { source: text, mockFailureCounter, imageDownload }),
      logger,
      watch: env.GENQ_PROVIDERS_WATCH,
    });
    const configSource = source;
    current = () => configSource.current();
    // The source logs each reload (and keeps the running configuration when a file is bad).
    source.onChange((config) => void publish(config));
  } else {
    const settings = providerSettingsFromEnv(env);
    // The source text only feeds the version hash; it is never logged.
    const config = buildRouterConfig(defaultProvidersFile(settings), {
      source: JSON.stringify(settings),
      mockFailureCounter,
      imageDownload,
    });
    current = () => config;
  }
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
    source,
    close() {
      clearInterval(timer);
      redis.off("ready", republish);
      source?.close();
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
