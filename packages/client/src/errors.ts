import type { ErrorCode } from "./types.ts";

/** What every {@link GenqError} carries besides its message. */
export interface GenqErrorFields {
  /** The HTTP status; 0 when no answer arrived (network failure, timeout, abort). */
  status: number;
  /** The API's `error.code`, or `connection_error` / `timeout` / `aborted` / `invalid_response` for client-side failures. */
  code: ErrorCode | ClientErrorCode;
  /** The `x-request-id` of the answer, to quote when reporting a problem. */
  requestId?: string | undefined;
  /** `error.details` of the answer. */
  details?: Record<string, unknown> | undefined;
  /** Seconds the server asked to wait (`Retry-After`). */
  retryAfterSeconds?: number | undefined;
  cause?: unknown;
}

/** Codes of failures the client detects itself (no API answer carries them). */
export type ClientErrorCode = "connection_error" | "timeout" | "aborted" | "invalid_response";

/**
 * Every failure of the client: the API's error (status, `code`, message, request id) or
 * a client-side one. Recognize errors by `code` (or {@link GenqError.is}), since they may
 * cross bundles; the subclasses are there for `instanceof` and narrowing.
 */
export class GenqError extends Error {
  override readonly name: string = "GenqError";
  readonly status: number;
  readonly code: ErrorCode | ClientErrorCode;
  readonly requestId: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, fields: GenqErrorFields) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.status = fields.status;
    this.code = fields.code;
    this.requestId = fields.requestId;
    this.details = fields.details;
    this.retryAfterSeconds = fields.retryAfterSeconds;
  }

  /** Whether `value` is a genq client error (also one from another copy of this package). */
  static is(value: unknown): value is GenqError {
    return (
      value instanceof GenqError ||
      (value instanceof Error &&
        typeof (value as { code?: unknown }).code === "string" &&
        typeof (value as { status?: unknown }).status === "number" &&
        value.name.endsWith("Error") &&
        "requestId" in value)
    );
  }
}

/** 400: the request is malformed; `message` says which field and why. */
export class InvalidRequestError extends GenqError {
  override readonly name = "InvalidRequestError";
}
/** 401: the API key is missing, wrong or revoked. */
export class AuthenticationError extends GenqError {
  override readonly name = "AuthenticationError";
}
/** 403: the key may not do this (e.g. a priority the plan does not include). */
export class PermissionDeniedError extends GenqError {
  override readonly name = "PermissionDeniedError";
}
/** 404: no such job, batch or upload of this user. */
export class NotFoundError extends GenqError {
  override readonly name = "NotFoundError";
}
/** 409: a conflict (an Idempotency-Key reused with another body, canceling a finished job). */
export class ConflictError extends GenqError {
  override readonly name = "ConflictError";
}
/** 413: the body or the batch is too large. */
export class PayloadTooLargeError extends GenqError {
  override readonly name = "PayloadTooLargeError";
}
/** 415: the content type is not accepted. */
export class UnsupportedMediaTypeError extends GenqError {
  override readonly name = "UnsupportedMediaTypeError";
}
/** 429 `rate_limited`: too many requests; retried by the client up to its limit. */
export class RateLimitError extends GenqError {
  override readonly name = "RateLimitError";
}
/** 429 `quota_exceeded`: the job does not fit this month's quota; retrying does not help. */
export class QuotaExceededError extends GenqError {
  override readonly name = "QuotaExceededError";
}
/** 503: the service is briefly unavailable; retried by the client up to its limit. */
export class ServiceUnavailableError extends GenqError {
  override readonly name = "ServiceUnavailableError";
}
/** Any other 5xx. */
export class InternalServerError extends GenqError {
  override readonly name = "InternalServerError";
}
/** No answer: the connection failed, or the request timed out or was aborted. */
export class ConnectionError extends GenqError {
  override readonly name = "ConnectionError";
}
/** `jobs.wait` / `batches.wait` gave up before the job or batch finished. */
export class WaitTimeoutError extends GenqError {
  override readonly name = "WaitTimeoutError";
}
/** A webhook delivery whose signature, timestamp or body does not verify. */
export class WebhookVerificationError extends GenqError {
  override readonly name = "WebhookVerificationError";
  constructor(message: string) {
    super(message, { status: 0, code: "invalid_request" });
  }
}

/** The error for an API answer, by code first (429 has two meanings), then by status. */
export function errorFromResponse(message: string, fields: GenqErrorFields): GenqError {
  switch (fields.code) {
    case "quota_exceeded":
      return new QuotaExceededError(message, fields);
    case "rate_limited":
      return new RateLimitError(message, fields);
  }
  switch (fields.status) {
    case 400:
      return new InvalidRequestError(message, fields);
    case 401:
      return new AuthenticationError(message, fields);
    case 403:
      return new PermissionDeniedError(message, fields);
    case 404:
      return new NotFoundError(message, fields);
    case 409:
      return new ConflictError(message, fields);
    case 413:
      return new PayloadTooLargeError(message, fields);
    case 415:
      return new UnsupportedMediaTypeError(message, fields);
    case 429:
      return new RateLimitError(message, fields);
    case 503:
      return new ServiceUnavailableError(message, fields);
  }
  return fields.status >= 500 ? new InternalServerError(message, fields) : new GenqError(message, fields);
}
