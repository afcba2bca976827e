import {
  createLogger,
  describeStartupError,
  exitWithStartupFailure,
  reportReady,
  stopWhenParentExits,
} from "@genq/core";
import { assertDatabaseReachable } from "@genq/db";
import { ProvidersConfigError } from "@genq/providers";
import { assertRedisReachable } from "@genq/queue";
import { otlpTracesEndpoint, startTracing } from "@genq/telemetry";
import { loadWorkerEnv } from "./env.ts";
import { startWorker } from "./worker.ts";

/** The ports this process listens on, by the variable that sets each (for a "port in use" message). */
const ports: Record<string, number> = {};

async function main(): Promise<void> {
  const env = loadWorkerEnv();
  if (env.GENQ_WORKER_HEALTH_PORT > 0) ports.GENQ_WORKER_HEALTH_PORT = env.GENQ_WORKER_HEALTH_PORT;
  const logger = createLogger({
    name: "genq-worker",
    level: env.LOG_LEVEL,
    ...(env.LOG_PRETTY === undefined ? {} : { pretty: env.LOG_PRETTY }),
  });
  const tracesEndpoint = otlpTracesEndpoint(env);
  const tracing =
    tracesEndpoint === undefined
      ? undefined
      : startTracing({ serviceName: "genq-worker", endpoint: tracesEndpoint });
  await assertRedisReachable(env.REDIS_URL);
  await assertDatabaseReachable(env.DATABASE_URL);
  const worker = await startWorker(env, logger);
  logger.info(
    {
      queues: env.GENQ_WORKER_QUEUES,
      providers: env.GENQ_PROVIDERS_FILE ?? `environment (default ${env.GENQ_DEFAULT_PROVIDER})`,
      pid: process.pid,
    },
    "genq worker ready",
  );
  reportReady("genq-worker");

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, timeoutMs: env.GENQ_SHUTDOWN_TIMEOUT_MS }, "stopping: finishing in-flight jobs");
    worker.close().then(
      async ({ drained }) => {
        await tracing?.shutdown().catch(() => {});
        logger.info(
          { drained },
          drained ? "stopped cleanly" : "stopped; unfinished jobs will be retried by another worker",
        );
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGHUP", () => {
    if (worker.reloadProviders === undefined) {
      logger.info("SIGHUP ignored: no providers file (GENQ_PROVIDERS_FILE) to reload");
      return;
    }
    // The source logs the outcome; a bad file keeps the running configuration.
    void worker.reloadProviders();
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  stopWhenParentExits(() => stop("parent exited"));
}

/** A bad providers file names the variable that points at it; otherwise as any start-up error. */
function describeWorkerStartupError(error: unknown): string[] {
  if (!ProvidersConfigError.is(error)) return describeStartupError(error, ports);
  const source =
    error.origin === "environment" ? "provider variables" : `GENQ_PROVIDERS_FILE (${error.origin})`;
  return error.issues.map((issue) =>
    issue.path === "(file)"
      ? `${source}: ${issue.message}; point it at a readable providers file, or unset it to configure providers from the environment`
      : `${source}: ${issue.path}: ${issue.message}`,
  );
}

main().catch((error: unknown) => exitWithStartupFailure("genq-worker", describeWorkerStartupError(error)));
