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

/** What a webhook queue job carries: the outbox message and which attempt to make. */
export interface WebhookJobData {
  messageId: string;
  attempt: number;
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
  async enqueue(messageId: string, attempt: number, delayMs = 0): Promise<void> {
    await this.queue.add(
      "deliver",
      { messageId, attempt, ...traceField() },
      {
        jobId: webhookJobId(messageId, attempt),
        delay: Math.max(0, Math.round(delayMs)),
        attempts: 1,
        removeOnComplete: { age: 3_600, count: 1_000 },
        removeOnFail: { age: 24 * 3_600, count: 5_000 },
      },
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
