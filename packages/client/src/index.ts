export {
  AuthenticationError,
  type ClientErrorCode,
  ConflictError,
  ConnectionError,
  GenqError,
  type GenqErrorFields,
  InternalServerError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  QuotaExceededError,
  RateLimitError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  WaitTimeoutError,
  WebhookVerificationError,
} from "./errors.ts";
export { GenqClient } from "./genq-client.ts";
export type { ClientOptions, RequestOptions } from "./http-client.ts";
export type { JsonlSource } from "./jsonl.ts";
export type { JsonlBatchRequest, ListBatchesQuery } from "./resources/batches.ts";
export { isTerminalEvent, type StreamEventsOptions } from "./resources/events.ts";
export { type CreateOptions, isFinished, type JobOf } from "./resources/jobs.ts";
export type { CreateUploadOptions } from "./resources/uploads.ts";
export type { WaitOptions } from "./resources/wait-for.ts";
export type {
  Batch,
  BatchAccepted,
  BatchEventCounts,
  BatchEventData,
  BatchItemResult,
  BatchOptions,
  BatchPage,
  BatchStatus,
  CreateBatchRequest,
  CreateJobRequest,
  ErrorBody,
  ErrorCode,
  EventError,
  ImageJob,
  ImageJobInput,
  ImageJobResult,
  ImageResultItem,
  Job,
  JobDetail,
  JobEvent,
  JobFinishedData,
  JobPage,
  JobResult,
  JobStatus,
  JobType,
  ListJobsQuery,
  LiveEvent,
  Page,
  Priority,
  ProviderCall,
  TextJob,
  TextJobInput,
  TextJobResult,
  Upload,
  Usage,
  UsageQuery,
  WebhookEvent,
  WebhookLinks,
  WebhookSecret,
} from "./types.ts";
export { type VerifyWebhookOptions, verifyWebhook, type WebhookHeaders } from "./webhook-verify.ts";
