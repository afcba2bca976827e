import { z } from "zod";
import { ImageJobInput } from "./image-job.ts";
import { PRIORITY_NAMES } from "./priorities.ts";
import { findUnstorableJson } from "./storable-json.ts";
import { TextJobInput } from "./text-job.ts";

/** The kinds of job genq runs. */
export const JobType = z.enum(["text", "image"]);
export type JobType = z.infer<typeof JobType>;

/** A job's lifecycle: queued → active → completed | failed | canceled. */
export const JobStatus = z.enum(["queued", "active", "completed", "failed", "canceled"]);
export type JobStatus = z.infer<typeof JobStatus>;

/** Statuses a job never leaves. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["completed", "failed", "canceled"];

/** Free-form caller data stored with a job and echoed back; at most 16 KiB as JSON. */
export const JobMetadata = z
  .record(z.string().max(64), z.unknown())
  .superRefine((value, context) => {
    // Depth first: measuring the size of hostile nesting would overflow the stack.
    const problem = findUnstorableJson(value);
    if (problem !== undefined) {
      context.addIssue({ code: "custom", path: problem.path, message: problem.message });
    } else if (JSON.stringify(value).length > 16_384) {
      context.addIssue({ code: "custom", message: "metadata must be at most 16 KiB as JSON" });
    }
  })
  .meta({
    id: "JobMetadata",
    description:
      "Free-form data of the caller's, echoed back: string keys (at most 64 characters), any JSON values, at most 16 KiB",
  });
export type JobMetadata = z.infer<typeof JobMetadata>;

const ProviderName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,63}$/,
    "provider must be a configured provider name such as `openai` or `mock`",
  );

/**
 * Where to POST the job's (or batch's) events, signed with the user's webhook secret
 * (Standard Webhooks). Only http(s) URLs; whether the host may be called is checked
 * when delivering (private and loopback addresses are refused).
 */
export const WebhookRequest = z
  .object({
    url: z
      .url({ protocol: /^https?$/, error: "webhook.url must be an absolute http(s) URL" })
      .max(2_048, "webhook.url must be at most 2048 characters"),
  })
  .strict();
export type WebhookRequest = z.infer<typeof WebhookRequest>;

/** Fields every job request has besides its type and input. */
const JOB_REQUEST_FIELDS = {
  priority: z.enum(PRIORITY_NAMES).default("normal"),
  provider: ProviderName.optional(),
  model: z.string().min(1).max(128).optional(),
  metadata: JobMetadata.optional(),
  webhook: WebhookRequest.optional(),
};

function storable(request: unknown, context: z.RefinementCtx): void {
  const problem = findUnstorableJson(request);
  if (problem !== undefined)
    context.addIssue({ code: "custom", path: problem.path, message: problem.message });
}

/** `POST /v1/jobs` body for a text job. */
export const CreateTextJobRequest = z
  .object({ type: z.literal("text"), input: TextJobInput, ...JOB_REQUEST_FIELDS })
  .strict()
  .superRefine(storable);
export type CreateTextJobRequest = z.infer<typeof CreateTextJobRequest>;

/** `POST /v1/jobs` body for an image job. */
export const CreateImageJobRequest = z
  .object({ type: z.literal("image"), input: ImageJobInput, ...JOB_REQUEST_FIELDS })
  .strict()
  .superRefine(storable);
export type CreateImageJobRequest = z.infer<typeof CreateImageJobRequest>;

/** `POST /v1/jobs` body: a text or an image job, told apart by `type`. */
export const CreateJobRequest = z
  .discriminatedUnion("type", [CreateTextJobRequest, CreateImageJobRequest])
  .meta({
    id: "CreateJobRequest",
    description: "A text or an image job, told apart by `type`",
    examples: [
      {
        type: "text",
        input: { prompt: "Write a haiku about queues", maxTokens: 200 },
        priority: "normal",
        metadata: { orderId: "A-1042" },
      },
    ],
  });
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

/**
 * The payload BullMQ carries: the id (the job itself lives in Postgres) and, when
 * tracing is on, the W3C trace context of the request that enqueued it.
 */
export const QueuedJobPayload = z.object({
  jobId: z.string(),
  trace: z.record(z.string(), z.string()).optional(),
});
export type QueuedJobPayload = z.infer<typeof QueuedJobPayload>;
