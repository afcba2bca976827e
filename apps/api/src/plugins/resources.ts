import { AccountRepository, type Database, JobRepository } from "@genq/db";
import type { JobQueues } from "@genq/queue";
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
    });
  },
  { name: "genq-resources" },
);
