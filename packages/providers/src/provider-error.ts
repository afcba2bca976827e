import { GenqError } from "@genq/core";

/** The provider failure taxonomy: a subset of genq's error codes. */
export type ProviderErrorCode =
  | "rate_limited"
  | "credit_exhausted"
  | "quota_exceeded"
  | "content_filtered"
  | "context_length_exceeded"
  | "auth_failed"
  | "invalid_request"
  | "provider_unavailable"
  | "timeout"
  | "canceled";

/** Codes that are worth another attempt (after a delay). */
const RETRYABLE: ReadonlySet<ProviderErrorCode> = new Set([
  "rate_limited",
  "provider_unavailable",
  "timeout",
]);

/** Options for {@link ProviderError}. */
export interface ProviderErrorOptions {
  provider: string;
  /** HTTP status from the provider, when there was a response. */
  status?: number;
  /** The provider's request id, when it sent one. */
  requestId?: string;
  /** How long the provider asked us to wait before retrying, in milliseconds. */
  retryAfterMs?: number;
  /** Overrides the default retryability of `code`. */
  retryable?: boolean;
  cause?: unknown;
}

/**
 * A failed provider call, mapped into the taxonomy. Carries the provider, the
 * HTTP status, the provider's request id and whether a retry may succeed.
 */
export class ProviderError extends GenqError {
  override readonly name = "ProviderError";
  readonly provider: string;
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ProviderErrorCode, message: string, options: ProviderErrorOptions) {
    super(code, message, {
      retryable: options.retryable ?? RETRYABLE.has(code),
      cause: options.cause,
      details: {
        provider: options.provider,
        ...(options.status === undefined ? {} : { status: options.status }),
        ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
      },
    });
    this.provider = options.provider;
    this.status = options.status;
    this.requestId = options.requestId;
    this.retryAfterMs = options.retryAfterMs;
  }
}
