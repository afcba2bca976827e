import type { Logger } from "@genq/core";
import type { WebhookRepository } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import { createRedisConnection } from "@genq/queue";
import { extractTraceContext, inSpan, SpanKind } from "@genq/telemetry";
import { DelayedError, type Job, Worker } from "bullmq";
import type { WebhookAllowlist } from "./webhook-allowlist.ts";
import { WebhookDeliverer } from "./webhook-delivery.ts";
import { WEBHOOK_QUEUE, type WebhookJobData, type WebhookQueue } from "./webhook-queue.ts";
import { WebhookRelay } from "./webhook-relay.ts";
import { WebhookSlots } from "./webhook-slots.ts";
import type { HostLookup } from "./webhook-target.ts";

/** Options for {@link startWebhookWorker}. */
export interface WebhookWorkerOptions {
  redisUrl: string;
  prefix: string;
  repository: WebhookRepository;
  /** The producer side (next attempts, relay). Not closed here. */
  queue: WebhookQueue;
  /** `JobQueues.acquireLease`: one relay pass at a time across processes. */
  acquireLease: (name: string, ttlMs: number) => Promise<boolean>;
  logger: Logger;
  /** Deliveries at once in this process. Default 16. */
  concurrency?: number | undefined;
  /**
   * Deliveries of one user at once, across every worker. Keep it below the total
   * concurrency, so a user whose endpoints never answer leaves room for the others.
   * @defaultValue 8
   */
  perTenantConcurrency?: number | undefined;
  /** Deliveries to one endpoint (or per-request host) at once, across every worker. @defaultValue 4 */
  perEndpointConcurrency?: number | undefined;
  /** See {@link WebhookDelivererOptions.disableFailingAfterMs}. */
  disableFailingAfterMs?: number | undefined;
  timeoutMs?: number | undefined;
  retryScheduleMs?: readonly number[] | undefined;
  allowlist?: WebhookAllowlist | undefined;
  lookup?: HostLookup | undefined;
  /** How often the relay looks for due messages. Default 5 s. */
  relayIntervalMs?: number | undefined;
  metrics?: GenqMetrics | undefined;
}

/** A running webhook worker: the `webhook` queue's consumer and the outbox relay. */
export interface RunningWebhookWorker {
  deliverer: WebhookDeliverer;
  relay: WebhookRelay;
  close(): Promise<void>;
}

/** Starts delivering webhooks: consumes the `webhook` queue and relays due outbox messages. */
export async function startWebhookWorker(options: WebhookWorkerOptions): Promise<RunningWebhookWorker> {
  const { logger } = options;
  const deliverer = new WebhookDeliverer({
    repository: options.repository,
    queue: options.queue,
    retryScheduleMs: options.retryScheduleMs,
    timeoutMs: options.timeoutMs,
    allowlist: options.allowlist,
    lookup: options.lookup,
    metrics: options.metrics,
    disableFailingAfterMs: options.disableFailingAfterMs,
  });
  const slotsConnection = createRedisConnection({
    url: options.redisUrl,
    role: "worker",
    connectionName: "genq-webhook-slots",
  });
  slotsConnection.on("error", (error) => logger.warn({ err: error }, "webhook slots connection error"));
  const slots = new WebhookSlots({
    redis: slotsConnection,
    prefix: options.prefix,
    perTenant: options.perTenantConcurrency ?? 8,
    perTarget: options.perEndpointConcurrency ?? 4,
    // An attempt ends within the timeout; its slot outlives a dead worker by little more.
    leaseMs: 2 * deliverer.timeoutMs + 1_000,
  });
  const connection = createRedisConnection({
    url: options.redisUrl,
    role: "worker",
    connectionName: "genq-webhook-worker",
  });
  const worker = new Worker<WebhookJobData>(
    WEBHOOK_QUEUE,
    async (job, token) => {
      const { userId, target } = job.data;
      // Jobs of older versions carry no tenant: delivered without a slot.
      const holder = job.id ?? job.data.messageId;
      if (userId !== undefined && target !== undefined) {
        if (!(await slots.acquire(userId, target, holder))) await putBack(job, token);
      }
      try {
        return await deliverOne(job);
      } finally {
        if (userId !== undefined && target !== undefined) await slots.release(userId, target, holder);
      }
    },
    { connection, prefix: options.prefix, concurrency: options.concurrency ?? 16 },
  );

  /**
   * The tenant or the target has no free slot: the job waits in the delayed set
   * (a growing, jittered pause), freeing this worker slot for other tenants at once.
   */
  async function putBack(job: Job<WebhookJobData>, token: string | undefined): Promise<never> {
    const waits = (job.data.waits ?? 0) + 1;
    const pauseMs = Math.min(250 * 2 ** Math.min(waits - 1, 5), 5_000) * (0.5 + Math.random());
    options.metrics?.webhookSlotWaits.inc();
    await job.updateData({ ...job.data, waits });
    await job.moveToDelayed(Date.now() + Math.round(pauseMs), token);
    throw new DelayedError();
  }

  async function deliverOne(job: Job<WebhookJobData>) {
    const result = await inSpan(
      "genq.webhook.deliver",
      {
        kind: SpanKind.PRODUCER,
        parent: extractTraceContext(job.data.trace),
        attributes: {
          "genq.webhook.message_id": job.data.messageId,
          "genq.webhook.attempt": job.data.attempt,
        },
      },
      async (span) => {
        const delivered = await deliverer.deliver(job.data);
        span.setAttribute("genq.webhook.outcome", delivered.done);
        return delivered;
      },
    );
    if (result.done === "attempted") {
      logger.info(
        { messageId: job.data.messageId, attempt: job.data.attempt, ...result },
        "webhook delivery attempt",
      );
    }
    return result;
  }
  worker.on("error", (error) => logger.error({ err: error }, "webhook worker error"));
  worker.on("failed", (job, error) =>
    logger.warn(
      { err: error, messageId: job?.data.messageId },
      "webhook delivery job failed; the relay retries it",
    ),
  );
  await worker.waitUntilReady();
  const relay = new WebhookRelay({
    repository: options.repository,
    queue: options.queue,
    acquireLease: options.acquireLease,
    logger,
    intervalMs: options.relayIntervalMs,
  });
  relay.start();
  return {
    deliverer,
    relay,
    async close() {
      await relay.stop();
      await worker.close();
      connection.disconnect();
      slotsConnection.disconnect();
    },
  };
}
