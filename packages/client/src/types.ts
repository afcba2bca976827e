/**
 * The public types of `@genq/client`, and the only file that knows the generated names.
 *
 * Everything below comes from `src/generated/openapi.ts` (openapi-typescript over
 * `contract/openapi.json`) except the types marked NARROW: where the contract is still
 * too loose (a job's `result` is `unknown`, the batch body and the event payloads are not
 * described), they are written here by hand from the API's code, to be replaced by the
 * generated component of the same name (`Job`, `JobResult`, `CreateBatchRequest`,
 * `BatchItemResult`, `JobEvent`, `WebhookEvent`, `ErrorCode`) once the contract has it.
 * When the contract changes: regenerate, then adjust this file only.
 */
import type { components, paths } from "./generated/openapi.ts";

type Schemas = components["schemas"];
type JsonBody<Operation> = Operation extends { requestBody?: { content: { "application/json": infer Body } } }
  ? Body
  : never;

/** The body of `POST /v1/jobs`: a text or an image job, told apart by `type`. */
export type CreateJobRequest = JsonBody<paths["/v1/jobs"]["post"]>;
/** The `input` of a text job: `prompt` or `messages`, sampling settings, `stream`, `cache`. */
export type TextJobInput = Extract<CreateJobRequest, { type: "text" }>["input"];
/** The `input` of an image job: `generate`, `edit` or `variation`. */
export type ImageJobInput = Extract<CreateJobRequest, { type: "image" }>["input"];
/** A job's priority, `urgent` to `background`. */
export type Priority = NonNullable<CreateJobRequest["priority"]>;
/** A job's type. */
export type JobType = CreateJobRequest["type"];
/** A job's status: queued → active → completed | failed | canceled. */
export type JobStatus = Schemas["Job"]["status"];
/** A batch's status. */
export type BatchStatus = Schemas["Batch"]["status"];

/** Every `error.code` the API answers with. */
export type ErrorCode = Schemas["Error"]["error"]["code"];
/** The body of every error response. */
export type ErrorBody = Schemas["Error"];

/** The result of a completed text job. */
export type TextJobResult = Schemas["TextJobResult"];

/** One image of a completed image job, with a signed link minted when the job was read. */
export type ImageResultItem = Schemas["JobImage"];

/** The result of a completed image job. */
export type ImageJobResult = Schemas["ImageJobResult"];

/** NARROW: a job's result, by job type. */
export type JobResult = TextJobResult | ImageJobResult;

type JobFields = Omit<Schemas["Job"], "type" | "input" | "result" | "metadata" | "error"> & {
  metadata: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
};

/** NARROW: a text job: `result` is a {@link TextJobResult} once completed. */
export type TextJob = JobFields & { type: "text"; input: TextJobInput; result: TextJobResult | null };
/** NARROW: an image job: `result` is an {@link ImageJobResult} once completed. */
export type ImageJob = JobFields & { type: "image"; input: ImageJobInput; result: ImageJobResult | null };
/** A job as the API shows it; narrow on `type` to read `input` and `result`. */
export type Job = TextJob | ImageJob;
/** One provider call of a job's attempts (`GET /v1/jobs/:id` only). */
export type ProviderCall = Schemas["ProviderCall"];
/** A job with its provider calls, as `jobs.get` answers. */
export type JobDetail = Job & { calls: ProviderCall[] };

/** A page of a cursor-paginated list. */
export interface Page<Item> {
  object: "list";
  data: Item[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}
/** A page of jobs, newest first. */
export type JobPage = Page<Job>;
/** The filters and page of `jobs.list`. */
export type ListJobsQuery = NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]>;

/** A batch as the API shows it. */
export type Batch = Schemas["Batch"];
/** The answer to `batches.create`: the batch and how many items were rejected. */
export type BatchAccepted = Schemas["BatchAccepted"];
/** A page of batches, newest first. */
export type BatchPage = Page<Batch>;

type BatchOptionsOf<Request extends CreateJobRequest> = Omit<Request, "input"> & {
  items: Request["input"][];
};
/**
 * NARROW: the JSON body of `POST /v1/batches` (the contract has no request body yet):
 * the job fields once, and each item an `input`.
 */
export type CreateBatchRequest =
  | BatchOptionsOf<Extract<CreateJobRequest, { type: "text" }>>
  | BatchOptionsOf<Extract<CreateJobRequest, { type: "image" }>>;
/** NARROW: the batch options of a JSONL body (sent in the query string). */
export type BatchOptions = Omit<CreateBatchRequest, "items">;

/** NARROW: one item of a batch with its outcome, as the results routes stream it. */
export type BatchItemResult = Omit<Schemas["BatchItemResult"], "result"> & { result: JobResult | null };

/** An uploaded image: reference its `id` as `input.image` or `input.mask` of an image job. */
export type Upload = Schemas["Upload"];
/** Usage, cost, quota this month and a month-end projection. */
export type Usage = Schemas["Usage"];
/** The query of `usage.get`. */
export type UsageQuery = NonNullable<paths["/v1/usage"]["get"]["parameters"]["query"]>;
/** The user's signing secret for per-request webhook URLs. */
export type WebhookSecret = Schemas["WebhookSecret"];

/** A job's error, as events and jobs carry it. */
export interface EventError {
  code: string;
  message: string;
}
/** NARROW: a batch's counts by status, as its events carry them. */
export interface BatchEventCounts {
  total: number;
  queued: number;
  completed: number;
  failed: number;
  canceled: number;
}
/** NARROW: the data of a terminal job event (the webhook's, and the stream's last). */
export interface JobFinishedData {
  id: string;
  object: "job";
  type: JobType;
  status: "completed" | "failed" | "canceled";
  batchId?: string;
  itemIndex?: number;
  error?: EventError;
}
/** NARROW: the data of a batch event. */
export interface BatchEventData {
  id: string;
  object: "batch";
  status: BatchStatus;
  counts: BatchEventCounts;
  progress: number;
}

/** NARROW: an event of a job's or a batch's live stream (`events.stream`), by `type`. */
export type JobEvent =
  | { type: "job.started"; data: { id: string; object: "job"; status: "active"; attempt: number } }
  | { type: "job.retrying"; data: { id: string; status: "queued"; attempt: number; error: EventError } }
  | { type: "job.delayed"; data: { id: string; status: "queued"; attempt: number; delayMs: number } }
  | { type: "job.delta"; data: { id: string; attempt: number; delta: string } }
  | { type: "job.completed" | "job.failed" | "job.canceled"; data: JobFinishedData }
  | { type: "batch.progress" | "batch.completed"; data: BatchEventData };
/** A live event with its stream id (absent on a terminal event rebuilt from the database). */
export type LiveEvent = JobEvent & { id: string | undefined };

/** NARROW: links of a webhook payload. */
export interface WebhookLinks {
  job?: string;
  batch?: string;
}
/** NARROW: a webhook delivery's body (Standard Webhooks), by `type`. */
export type WebhookEvent =
  | {
      type: "job.completed" | "job.failed" | "job.canceled";
      timestamp: string;
      data: JobFinishedData & { links: WebhookLinks };
    }
  | {
      type: "batch.progress" | "batch.completed";
      timestamp: string;
      data: BatchEventData & { links: WebhookLinks };
    }
  | {
      type: "webhook_endpoint.disabled";
      timestamp: string;
      data: {
        id: string;
        object: "webhook_endpoint";
        url: string;
        disabledAt: string;
        disabledReason: string;
        failingSince: string | null;
        links: WebhookLinks;
      };
    };
