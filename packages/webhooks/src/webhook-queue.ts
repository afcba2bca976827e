import type { OutboxMessageRef } from "@genq/db";
import { injectTraceContext } from "@genq/telemetry";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";

/** The active trace context, when tracing is on and a span is active (the finishing job's). */
function traceField(): { trace?: Record<string, string> } {
  const trace = injectTraceContext();
  return trace === undefined ? {} : { trace };
}

/** The BullMQ queue webhook deliveries run on. */
export const WEBHOOK_QUEUE = "webhook";

/** Messages queued per Redis round trip (`addBulk`), so a large fan-out is queued in bounded steps. */
export const ENQUEUE_CHUNK = 500;

/**
 * The key deliveries are limited by besides the tenant: the endpoint, or the host
 * of a per-request URL (so a user's many URLs on one slow host share its slots).
 */
export function deliveryTarget(message: Pick<OutboxMessageRef, "endpointId" | "url">): string {
  if (message.endpointId !== null) return `endpoint:${message.endpointId}`;
  try {
    return `host:${new URL(message.url ?? "").host}`;
  } catch {
    return `url:${message.url}`;
  }
}

/** What a webhook queue job carries: the outbox message and which attempt to make. */
export interface WebhookJobData {
  messageId: string;
  attempt: number;
  /** The owner of the message: deliveries are limited per tenant. Absent in jobs of older versions. */
  userId?: string;
  /** {@link deliveryTarget} of the message: deliveries are limited per target. */
  target?: string;
  /** How many times the job was put back because its tenant or target had no free slot. */
  waits?: number;
  /** W3C trace context of the job whose event this is, so the delivery joins its trace. */
  trace?: Record<string, string>;
}

/** The BullMQ job id of a message's attempt: adding the same attempt twice keeps one job. */
export function webhookJobId(messageId: string, attempt: number): string {
  return `${messageId}-a${attempt}`;
}

/**
 * The producer side of the `webhook` queue (same prefix as the job queues). Redis
 * only carries the wake-ups: the outbox in Postgres says what is owed, and the
 * relay re-adds whatever Redis lost.
 */
export class WebhookQueue {
  readonly queue: Queue<WebhookJobData>;

  constructor(options: { connection: Redis; prefix: string }) {
    this.queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
      connection: options.connection,
      prefix: options.prefix,
      skipWaitingForReady: true,
    });
    // Errors surface through the calls that fail.
    this.queue.on("error", () => {});
  }

  /** Queues attempt `attempt` of a message, after `delayMs`. Idempotent per (message, attempt). */
  async enqueue(message: OutboxMessageRef, attempt: number, delayMs = 0): Promise<void> {
    const job = this.#job(message, attempt, delayMs);
    await this.queue.add(job.name, job.data, job.opts);
  }

  /**
   * Queues the first attempt of many messages, {@link ENQUEUE_CHUNK} per round
   * trip, one chunk after the other.
   */
  async enqueueFirstAttempts(messages: readonly OutboxMessageRef[]): Promise<void> {
    for (let from = 0; from < messages.length; from += ENQUEUE_CHUNK) {
      await this.queue.addBulk(
        messages.slice(from, from + ENQUEUE_CHUNK).map((message) => this.#job(message, 1, 0)),
      );
    }
  }

  #job(message: OutboxMessageRef, attempt: number, delayMs: number) {
    return {
      name: "deliver",
      data: {
        messageId: message.id,
        attempt,
        userId: message.userId,
        target: deliveryTarget(message),
        ...traceField(),
      } satisfies WebhookJobData,
      opts: {
        jobId: webhookJobId(message.id, attempt),
        delay: Math.max(0, Math.round(delayMs)),
        attempts: 1,
        removeOnComplete: { age: 3_600, count: 1_000 },
        removeOnFail: { age: 24 * 3_600, count: 5_000 },
      },
    };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
