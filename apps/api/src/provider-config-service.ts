import { GenqError, type SecretBox } from "@genq/core";
import { type Database, type ManagedConfigValidator, ProviderConfigRepository } from "@genq/db";
import { ProvidersConfigError, readProviderBaseLayer, validateMergedProviders } from "@genq/providers";
import { createProviderAdminQueue, type ProviderAdminTask, providerConfigChannel } from "@genq/queue";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";

/** Options for {@link ProviderConfigService}. */
export interface ProviderConfigServiceOptions {
  db: Database;
  redis: Redis;
  prefix: string;
  secretBox: SecretBox | undefined;
}

/** A base with no provider: what changes are checked against before any worker has published its file. */
const EMPTY_BASE = { version: 1, providers: [] };

/**
 * The API's side of the runtime provider configuration (decision 0023): each
 * change is validated against the workers' base layer (the providers file as they
 * published it, secrets masked) merged with the database, with the file's own
 * schema and messages, before anything is stored; then the new version is
 * announced to the workers. Checks that call a provider are queued for a worker.
 */
export class ProviderConfigService {
  readonly repository: ProviderConfigRepository;
  readonly #redis: Redis;
  readonly #prefix: string;
  #queue: Queue<ProviderAdminTask> | undefined;

  constructor(options: ProviderConfigServiceOptions) {
    this.repository = new ProviderConfigRepository({ db: options.db, secretBox: options.secretBox });
    this.#redis = options.redis;
    this.#prefix = options.prefix;
  }

  /**
   * Runs a change with a validator built from the current base layer, then
   * announces the new version (workers that miss it find it by polling).
   */
  async change<T>(run: (validate: ManagedConfigValidator) => Promise<T>): Promise<T> {
    const base = (await readProviderBaseLayer(this.#redis, this.#prefix)) ?? EMPTY_BASE;
    const validate: ManagedConfigValidator = (layer) => {
      try {
        validateMergedProviders(base, layer);
      } catch (error) {
        if (!ProvidersConfigError.is(error)) throw error;
        throw new GenqError("invalid_request", error.message, { details: { issues: error.issues } });
      }
    };
    const result = await run(validate);
    await this.announce();
    return result;
  }

  /** Publishes the current version; a failure only delays workers until their next check. */
  async announce(): Promise<void> {
    try {
      const version = await this.repository.currentVersion();
      await this.#redis.publish(providerConfigChannel(this.#prefix), String(version));
    } catch {
      // Workers poll the version.
    }
  }

  /** Queues a check for a worker; its result is stored on the key or provider. */
  async enqueue(task: ProviderAdminTask): Promise<string> {
    this.#queue ??= createProviderAdminQueue({ connection: this.#redis, prefix: this.#prefix });
    const job = await this.#queue.add(task.kind, task);
    return job.id ?? "";
  }

  async close(): Promise<void> {
    await this.#queue?.close();
  }
}
