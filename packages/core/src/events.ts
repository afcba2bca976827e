/**
 * Events genq reports about jobs and batches, by webhook (Standard Webhooks) and
 * over server-sent events. Names are noun.verb.
 */
export const WEBHOOK_EVENT_TYPES = [
  "job.completed",
  "job.failed",
  "job.canceled",
  "batch.progress",
  "batch.completed",
  /** An endpoint was disabled (it kept failing, or answered 410); sent to the owner's other endpoints. */
  "webhook_endpoint.disabled",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Counts of a batch's items by status. */
export interface BatchCounts {
  total: number;
  queued: number;
  completed: number;
  failed: number;
  canceled: number;
}

/**
 * An event that happened inside a committed transaction: what webhooks deliver
 * and live streams show. `data` is thin: ids, status, counts; never results or
 * image bytes (a receiver fetches those with the job's link).
 */
export interface GenqEvent {
  type: WebhookEventType;
  userId: string;
  /** The job the event is about (job events), or null. */
  jobId: string | null;
  /** The batch the event is about, or the batch of the job; null for a single job. */
  batchId: string | null;
  /** A per-request webhook URL of the job or batch, delivered besides the user's endpoints. */
  webhookUrl: string | null;
  timestamp: Date;
  data: Record<string, unknown>;
}
