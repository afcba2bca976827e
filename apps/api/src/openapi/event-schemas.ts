import { JobStatus, JobType } from "@genq/core";
import { z } from "zod";
import { ErrorCode } from "../routes/error-response.ts";

const JobEventError = z.object({ code: ErrorCode, message: z.string() });

const BatchCountsSchema = z
  .object({
    total: z.number().int(),
    queued: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    canceled: z.number().int(),
  })
  .meta({ id: "BatchCounts" });

const EventLinks = z
  .object({ job: z.string().optional(), batch: z.string().optional() })
  .describe("Where to read the job or batch (webhooks only)");

/**
 * The `data` of a job's events, live (SSE) and in webhooks: thin, never the result
 * (read the job for it). Which fields are present depends on the event.
 */
export const JobEvent = z
  .object({
    id: z.string().describe("The job id"),
    object: z.literal("job"),
    type: JobType.optional().describe("Terminal events"),
    status: JobStatus,
    attempt: z
      .number()
      .int()
      .optional()
      .describe("`job.started`, `job.retrying`, `job.delayed`, `job.delta`"),
    delta: z.string().optional().describe("`job.delta`: the next piece of streamed text"),
    delayMs: z.number().int().optional().describe("`job.delayed`: when the job runs again"),
    error: JobEventError.optional().describe("`job.failed`, `job.retrying`"),
    batchId: z.string().optional(),
    itemIndex: z.number().int().optional(),
    links: EventLinks.optional(),
  })
  .meta({
    id: "JobEvent",
    description:
      "The `data` of a job event. SSE event names: `job.started`, `job.retrying`, `job.delayed`, `job.progress`, " +
      "`job.delta`, then one of `job.completed`, `job.failed`, `job.canceled`, after which the stream ends.",
    examples: [
      { id: "0193a8f2-7c41-7d2e-9a6b-3f1e2d4c5b6a", object: "job", type: "text", status: "completed" },
    ],
  });

/** The `data` of a batch's events. */
export const BatchEvent = z
  .object({
    id: z.string().describe("The batch id"),
    object: z.literal("batch"),
    status: z.string().describe("`running` until the batch ends"),
    counts: BatchCountsSchema,
    progress: z.number().int().describe("Finished items in percent, 0–100"),
    links: EventLinks.optional(),
  })
  .meta({
    id: "BatchEvent",
    description:
      "The `data` of a batch event. SSE event names: `batch.progress` (about one per second while items " +
      "finish), then `batch.completed`, after which the stream ends.",
    examples: [
      {
        id: "0193a8f2-7c41-7d2e-9a6b-000000000b01",
        object: "batch",
        status: "running",
        counts: { total: 3, queued: 1, completed: 2, failed: 0, canceled: 0 },
        progress: 66,
      },
    ],
  });

const WebhookEndpointDisabledData = z
  .object({
    id: z.string(),
    object: z.literal("webhook_endpoint"),
    url: z.string(),
    disabledAt: z.string(),
    disabledReason: z.string(),
    failingSince: z.string().nullable(),
  })
  .meta({ id: "WebhookEndpointDisabledEvent" });

function webhookEnvelope<const Types extends readonly [string, ...string[]], Data extends z.ZodType>(
  id: string,
  types: Types,
  data: Data,
) {
  return z
    .object({
      type: z.enum(types),
      timestamp: z.string().describe("When it happened (ISO 8601)"),
      data,
    })
    .meta({ id });
}

export const JobWebhookEvent = webhookEnvelope(
  "JobWebhookEvent",
  ["job.completed", "job.failed", "job.canceled"],
  JobEvent,
);
export const BatchWebhookEvent = webhookEnvelope(
  "BatchWebhookEvent",
  ["batch.progress", "batch.completed"],
  BatchEvent,
);
export const WebhookEndpointWebhookEvent = webhookEnvelope(
  "WebhookEndpointWebhookEvent",
  ["webhook_endpoint.disabled"],
  WebhookEndpointDisabledData,
);

/** The body genq POSTs to webhook endpoints (Standard Webhooks: signed with `webhook-id`, `webhook-timestamp`, `webhook-signature`). */
export const WebhookEvent = z.union([JobWebhookEvent, BatchWebhookEvent, WebhookEndpointWebhookEvent]).meta({
  id: "WebhookEvent",
  description: "Every webhook body: `type` says which event and what `data` holds",
  examples: [
    {
      type: "job.completed",
      timestamp: "2026-12-03T16:00:00.000Z",
      data: {
        id: "0193a8f2-7c41-7d2e-9a6b-3f1e2d4c5b6a",
        object: "job",
        type: "text",
        status: "completed",
        links: { job: "https://genq.example.com/v1/jobs/0193a8f2-7c41-7d2e-9a6b-3f1e2d4c5b6a" },
      },
    },
  ],
});
