import {
  AccountRepository,
  AssetRepository,
  type Database,
  JobAdmission,
  JobRepository,
  WebhookRepository,
} from "@genq/db";
import { createBatchProgressReader, EventLog, EventPublisher, EventWatches } from "@genq/events";
import { createJobLifecycle, type JobLifecycle } from "@genq/lifecycle";
import type { JobQueues } from "@genq/queue";
import type { QuotaLedger } from "@genq/quota";
import type { ObjectStorage } from "@genq/storage";
import { EMPTY_ALLOWLIST, type WebhookAllowlist, WebhookQueue } from "@genq/webhooks";
import type { FastifyInstance } from "fastify";
import fastifyPlugin from "fastify-plugin";
import type { Redis } from "ioredis";

/** What the routes use: the database, Redis, the queues and the repositories over them. */
export interface GenqResources {
  db: Database;
  redis: Redis;
  queues: JobQueues;
  jobs: JobRepository;
  /** Job transitions the API makes: cancels (a user's, a disabled user's jobs), batch cancels. */
  lifecycle: JobLifecycle;
  accounts: AccountRepository;
  assets: AssetRepository;
  /** Where image jobs' images are; links to them are minted per read. */
  storage: ObjectStorage | undefined;
  /** Lifetime of those links. */
  assetUrlTtlSeconds: number;
  /** Plans and quotas: the quota held at admission, and `/v1/usage`. */
  quota: QuotaLedger | undefined;
  /** Admits jobs in one round trip: idempotency lookup, quota hold and insert. */
  admission: JobAdmission;
  /** Live events: the log the SSE routes read, and the publisher of this process's events (cancels). */
  events: EventPublisher;
  /** Webhook endpoints, secrets, the outbox and its delivery log. */
  webhooks: WebhookRepository;
  /** Private hosts webhooks may call anyway (`GENQ_WEBHOOK_ALLOWED_HOSTS`). */
  webhookAllowlist: WebhookAllowlist;
  /** The `webhook` queue's producer side (redeliveries). */
  webhookQueue: WebhookQueue;
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
  /**
   * Send the hot-path statements (admission, the lifecycle's transitions) prepared (named);
   * false sends them unnamed, for PgBouncer in transaction mode before 1.21. Default true.
   */
  preparedStatements?: boolean | undefined;
  /** Bounds of the live event streams this process writes (defaults: 1,000 entries, one hour). */
  events?:
    | {
        maxLength?: number | undefined;
        retentionMs?: number | undefined;
        finishedRetentionMs?: number | undefined;
      }
    | undefined;
  /** Private hosts webhooks may call anyway; default none. */
  webhookAllowlist?: WebhookAllowlist | undefined;
  /** The most webhook endpoints one user may have; default 20. */
  webhookMaxEndpointsPerUser?: number | undefined;
  /** Prefix of links in webhook payloads; relative when empty. */
  publicUrl?: string | undefined;
}

/** Decorates the instance with genq's resources. Their owner closes them. */
export const resourcesPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: ResourcesPluginOptions) => {
    // Who listens to which job or batch: SSE sessions announce theirs, publishers skip the rest.
    const watchSubscriber = options.redis.duplicate({
      connectionName: "genq-events-watch",
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    watchSubscriber.on("error", () => {});
    const watches = new EventWatches({
      redis: options.redis,
      subscriber: watchSubscriber,
      prefix: options.queues.prefix,
      onError: (error) => app.log.warn({ err: error }, "live event watches: Redis error"),
    });
    // Not awaited: the API starts while Redis is away; until subscribed, sessions fall back to row checks.
    watches.start().catch((error: unknown) => app.log.warn({ err: error }, "could not subscribe to watches"));
    app.addHook("onClose", async () => {
      await watches.close();
      watchSubscriber.disconnect();
    });
    const events = new EventPublisher({
      watches,
      log: new EventLog({
        redis: options.redis,
        prefix: options.queues.prefix,
        ...(options.events?.maxLength === undefined ? {} : { maxLength: options.events.maxLength }),
        ...(options.events?.retentionMs === undefined ? {} : { retentionMs: options.events.retentionMs }),
        ...(options.events?.finishedRetentionMs === undefined
          ? {}
          : { finishedRetentionMs: options.events.finishedRetentionMs }),
      }),
      logger: app.log,
      batchProgress: { read: createBatchProgressReader(options.db) },
    });
    app.addHook("onClose", async () => events.close());
    // Cancels finish jobs here too: their webhook messages are written in the same transaction.
    const webhooks = new WebhookRepository({
      db: options.db,
      publicUrl: options.publicUrl,
      maxEndpointsPerUser: options.webhookMaxEndpointsPerUser,
    });
    const webhookQueue = new WebhookQueue({ connection: options.redis, prefix: options.queues.prefix });
    app.addHook("onClose", async () => webhookQueue.close());
    app.decorate("genq", {
      db: options.db,
      redis: options.redis,
      queues: options.queues,
      jobs: new JobRepository({ db: options.db }),
      lifecycle: createJobLifecycle({
        db: options.db,
        events,
        webhooks: {
          repository: webhooks,
          queue: webhookQueue,
          onEnqueueError: (error) =>
            app.log.warn({ err: error }, "webhook enqueue failed; the relay will queue it"),
        },
        ...(options.preparedStatements === undefined
          ? {}
          : { sql: { prepared: options.preparedStatements } }),
      }),
      accounts: new AccountRepository({ db: options.db }),
      assets: new AssetRepository({ db: options.db }),
      storage: options.storage,
      assetUrlTtlSeconds: options.assetUrlTtlSeconds ?? 3_600,
      quota: options.quota,
      admission: new JobAdmission({ db: options.db, preparedStatements: options.preparedStatements }),
      events,
      webhooks,
      webhookAllowlist: options.webhookAllowlist ?? EMPTY_ALLOWLIST,
      webhookQueue,
    });
  },
  { name: "genq-resources" },
);
