import type { ErrorCode } from "@genq/core";

/**
 * The HTTP status of each error code. An exhaustive switch: adding a code to
 * ERROR_CODES without a status here fails the type check.
 */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case "invalid_request":
    case "context_length_exceeded":
      return 400;
    case "unauthorized":
      return 401;
    case "forbidden":
      return 403;
    case "not_found":
      return 404;
    case "idempotency_conflict":
    case "conflict":
      return 409;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "content_filtered":
      return 422;
    case "rate_limited":
    case "quota_exceeded":
      return 429;
    case "credit_exhausted":
    case "auth_failed":
    case "provider_unavailable":
      return 502;
    case "timeout":
      return 504;
    case "canceled":
      return 409;
    case "service_unavailable":
      return 503;
    case "internal_error":
      return 500;
    default: {
      const unhandled: never = code;
      throw new Error(`no HTTP status for error code ${String(unhandled)}`);
    }
  }
}
