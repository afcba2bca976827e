/**
 * The closed set of error codes genq uses, at the API, in the worker and in the
 * provider layer. Errors cross process boundaries (BullMQ stores them as text), so
 * they are recognized by `code`, never only by `instanceof`.
 */
export const ERROR_CODES = [
  // Caller mistakes and access
  "invalid_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "idempotency_conflict",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "quota_exceeded",
  // Provider taxonomy
  "credit_exhausted",
  "content_filtered",
  "context_length_exceeded",
  "auth_failed",
  "provider_unavailable",
  "timeout",
  // Lifecycle and infrastructure
  "canceled",
  "service_unavailable",
  "internal_error",
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Options for {@link GenqError}. */
export interface GenqErrorOptions {
  /** Machine-readable data a client can act on (field paths, limits, ...). */
  details?: Record<string, unknown>;
  /** Whether running the same work again may succeed. */
  retryable?: boolean;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The base error of genq. Subclasses carry their data as fields; every instance
 * has a `code` from the closed set and a `retryable` flag.
 */
export class GenqError extends Error {
  override readonly name: string = "GenqError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: GenqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  /** True for any GenqError, including one from another copy of this module. */
  static is(error: unknown): error is GenqError {
    return (
      error instanceof GenqError ||
      (typeof error === "object" &&
        error !== null &&
        typeof (error as { code?: unknown }).code === "string" &&
        isErrorCode((error as { code: string }).code) &&
        typeof (error as { retryable?: unknown }).retryable === "boolean")
    );
  }
}

/** True when `value` is one of {@link ERROR_CODES}. */
export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(value);
}

/** A job, batch or other resource that does not exist or belongs to someone else. */
export class NotFoundError extends GenqError {
  override readonly name = "NotFoundError";
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super("not_found", `${resource} ${id} was not found`, { details: { resource, id } });
  }
}

/** The same Idempotency-Key was sent with a different request body. */
export class IdempotencyConflictError extends GenqError {
  override readonly name = "IdempotencyConflictError";
  constructor(
    readonly idempotencyKey: string,
    readonly existingJobId: string,
  ) {
    super(
      "idempotency_conflict",
      `Idempotency-Key "${idempotencyKey}" was already used with a different request body; use a new key for a different request`,
      { details: { idempotencyKey, jobId: existingJobId } },
    );
  }
}
