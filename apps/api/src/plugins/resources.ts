import { AccountRepository, AssetRepository, type Database, JobRepository } from "@genq/db";
import type { JobQueues } from "@genq/queue";
import type { QuotaLedger } from "@genq/quota";
import type { ObjectStorage } from "@genq/storage";
import type { FastifyInstance } from "fastify";
import fastifyPlugin from "fastify-plugin";
import type { Redis } from "ioredis";

/** What the routes use: the database, Redis, the queues and the repositories over them. */
export interface GenqResources {
  db: Database;
  redis: Redis;
  queues: JobQueues;
  jobs: JobRepository;
  accounts: AccountRepository;
  assets: AssetRepository;
  /** Where image jobs' images are; links to them are minted per read. */
  storage: ObjectStorage | undefined;
  /** Lifetime of those links. */
  assetUrlTtlSeconds: number;
  /** Plans and quotas: the submit-time check and `/v1/usage`. */
  quota: QuotaLedger | undefined;
}

declare module "fastify" {
  interface FastifyInstance {
    genq: GenqResources;
  }
}

/** Options for {@link resourcesPlugin}. */
export interface ResourcesPluginOptions {
  db: Database;
  redis: Redis;
  queues: JobQueues;
  storage?: ObjectStorage | undefined;
  assetUrlTtlSeconds?: number | undefined;
  quota?: QuotaLedger | undefined;
}

/** Decorates the instance with genq's resources. Their owner closes them. */
export const resourcesPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: ResourcesPluginOptions) => {
    app.decorate("genq", {
      db: options.db,
      redis: options.redis,
      queues: options.queues,
      jobs: new JobRepository({ db: options.db }),
      accounts: new AccountRepository({ db: options.db }),
      assets: new AssetRepository({ db: options.db }),
      storage: options.storage,
      assetUrlTtlSeconds: options.assetUrlTtlSeconds ?? 3_600,
      quota: options.quota,
    });
  },
  { name: "genq-resources" },
);
