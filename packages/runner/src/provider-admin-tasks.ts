import type { Logger } from "@genq/core";
import type { ProviderConfigRepository } from "@genq/db";
import {
  type BuildRouterConfigOptions,
  buildRouterConfig,
  checkProviderKey,
  type Provider,
  ProvidersConfigError,
  validateProvidersFile,
} from "@genq/providers";
import { createRedisConnection, PROVIDER_ADMIN_QUEUE, type ProviderAdminTask } from "@genq/queue";
import { type Job, Worker } from "bullmq";

/** Options for {@link startProviderAdminWorker}. */
export interface ProviderAdminWorkerOptions {
  repository: ProviderConfigRepository;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  /** How the adapters are built (image downloads, fetch); the mock's failure counter. */
  build?: Omit<BuildRouterConfigOptions, "source">;
  /** Timeout of one check. @defaultValue 15000 */
  timeoutMs?: number;
}

/**
 * Runs operators' provider checks from the `provider-admin` queue: validating a
 * stored key and listing a provider's models, each with the cheapest call that
 * proves it (the model list). The result is stored on the key or provider; a check
 * that cannot run (the key was deleted) is dropped.
 */
export function startProviderAdminWorker(options: ProviderAdminWorkerOptions): { close(): Promise<void> } {
  const connection = createRedisConnection({
    url: options.redisUrl,
    role: "worker",
    connectionName: "genq-worker-provider-admin",
  });
  connection.on("error", () => {});
  const worker = new Worker<ProviderAdminTask>(
    PROVIDER_ADMIN_QUEUE,
    (job: Job<ProviderAdminTask>) => runProviderAdminTask(job.data, options),
    { connection, prefix: options.prefix, concurrency: 2 },
  );
  worker.on("error", (error) => options.logger.warn({ err: error }, "provider admin worker: Redis error"));
  return {
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}

/** Runs one task; exported for tests. */
export async function runProviderAdminTask(
  task: ProviderAdminTask,
  options: Pick<ProviderAdminWorkerOptions, "repository" | "logger" | "build" | "timeoutMs">,
): Promise<void> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 15_000);
  if (task.kind === "validate-key") {
    const stored = await options.repository.openKeyForCheck(task.keyId);
    if (stored === undefined) return;
    const client = clientFor(stored.provider, options);
    const check = client.ok ? await checkProviderKey(client.client, signal) : client.failure;
    await options.repository.recordKeyCheck(task.keyId, check);
    options.logger.info(
      {
        provider: stored.provider.name,
        keyId: stored.keyName,
        valid: check.valid,
        requestedBy: task.requestedBy,
      },
      "provider key validated",
    );
    return;
  }
  const stored = await options.repository.openProviderForSync(task.provider);
  if (stored === undefined) return;
  const client = clientFor(stored, options);
  const check = client.ok ? await checkProviderKey(client.client, signal) : client.failure;
  await options.repository.recordModelSync(
    task.provider,
    check.valid ? { models: check.models } : { errorCode: check.errorCode, message: check.message },
  );
  options.logger.info(
    { provider: task.provider, ok: check.valid, requestedBy: task.requestedBy },
    "provider models synced",
  );
}

type ClientOutcome =
  | { ok: true; client: Provider }
  | { ok: false; failure: { valid: false; errorCode: string; message: string } };

/**
 * The adapter of the entry's first key, built the way the router builds it. The
 * entry is checked alone (no models needed to check a key), so it gets one free
 * stand-in model; its other fields pass the file's validation as they would in it.
 */
function clientFor(
  entry: { name: string } & Record<string, unknown>,
  options: Pick<ProviderAdminWorkerOptions, "build">,
): ClientOutcome {
  try {
    const { models: _models, defaultModel: _defaultModel, ...rest } = entry;
    const file = validateProvidersFile(
      { version: 1, providers: [{ ...rest, models: [{ id: "key-check", zeroCost: true }] }] },
      { origin: "database" },
    );
    const config = buildRouterConfig(file, { ...options.build, source: "key-check" });
    const key = config.providers.get(entry.name)?.keys[0];
    if (key === undefined) throw new Error("the provider has no enabled key to check with");
    return { ok: true, client: key.client };
  } catch (error) {
    const message = ProvidersConfigError.is(error)
      ? error.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")
      : error instanceof Error
        ? error.message
        : String(error);
    return { ok: false, failure: { valid: false, errorCode: "invalid_request", message } };
  }
}
