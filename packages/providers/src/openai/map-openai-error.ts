import OpenAI from "openai";
import { parseRetryAfter } from "../parse-retry-after.ts";
import { ProviderError, type ProviderErrorCode } from "../provider-error.ts";

/** Codes and types in OpenAI error bodies that mean the account is out of money, not busy. */
const CREDIT_CODES = new Set(["insufficient_quota", "billing_hard_limit_reached", "billing_not_active"]);
/** Codes in error bodies that mean the prompt or the output was refused by a safety system. */
const CONTENT_FILTER_CODES = new Set(["content_policy_violation", "content_filter", "moderation_blocked"]);
/**
 * A 401 that is about what the request asks for, not about the key: a restricted
 * key without the scope of one endpoint ("You have insufficient permissions for
 * this operation. Missing scopes: api.model.images.request") still works elsewhere.
 */
const MISSING_SCOPE_MESSAGE = /insufficient permissions|missing scopes/i;

/**
 * Maps anything the `openai` SDK (or our own code around it) throws into the
 * {@link ProviderError} taxonomy, keeping the HTTP status, the request id and any
 * Retry-After. The error body's `code`/`type` wins over the status where OpenAI
 * overloads a status: a 429 is either "slow down" (retryable) or "out of credit"
 * (retrying cannot help).
 */
export function mapOpenAIError(error: unknown, provider: string): ProviderError {
  if (error instanceof ProviderError) return error;

  if (error instanceof OpenAI.APIUserAbortError || isAbortError(error)) {
    return new ProviderError("canceled", `${provider}: the request was canceled`, { provider, cause: error });
  }
  // Checked before APIConnectionError, which it extends.
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ProviderError("timeout", `${provider}: the request timed out`, { provider, cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ProviderError(
      "provider_unavailable",
      `${provider}: could not connect: ${describeCause(error)}`,
      {
        provider,
        cause: error,
      },
    );
  }

  if (error instanceof OpenAI.APIError) {
    const status = error.status;
    const code = classifyAPIError(status, error.code ?? undefined, error.type, error.message);
    const retryAfterMs = parseRetryAfter(error.headers);
    return new ProviderError(code, `${provider}: ${error.message}`, {
      provider,
      ...(status === undefined ? {} : { status }),
      ...(typeof error.requestID === "string" ? { requestId: error.requestID } : {}),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      cause: error,
    });
  }

  // A malformed response (bad JSON in a stream, missing fields) is the provider's
  // fault and may not repeat, so it is worth another attempt.
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError("provider_unavailable", `${provider}: ${message}`, { provider, cause: error });
}

/**
 * Only errors about the key itself are `auth_failed` or `credit_exhausted` (the
 * router takes the key out of rotation for those): an invalid or revoked key
 * (401) and an account out of money. A 403 is about the request: "Your
 * organization must be verified to use the model `gpt-image-1`", a region the
 * project may not call from. It fails the job as `invalid_request` and leaves the
 * key serving every other request.
 */
function classifyAPIError(
  status: number | undefined,
  code: string | undefined,
  type: string | undefined,
  message: string,
): ProviderErrorCode {
  const reasons = [code, type].filter((value): value is string => typeof value === "string");
  if (reasons.some((reason) => CREDIT_CODES.has(reason))) return "credit_exhausted";
  if (reasons.includes("context_length_exceeded")) return "context_length_exceeded";
  if (reasons.some((reason) => CONTENT_FILTER_CODES.has(reason))) return "content_filtered";
  if (reasons.includes("invalid_api_key")) return "auth_failed";
  if (reasons.includes("rate_limit_exceeded")) return "rate_limited";

  if (status === undefined) {
    // An error event inside a stream: the server gave up mid-answer.
    return "provider_unavailable";
  }
  if (status === 429) return "rate_limited";
  if (status === 402) return "credit_exhausted";
  if (status === 401) return MISSING_SCOPE_MESSAGE.test(message) ? "invalid_request" : "auth_failed";
  if (status === 403) return "invalid_request";
  if (status === 408) return "timeout";
  // 409 is OpenAI's "lock timeout / try again", which its own SDK retries.
  if (status === 409) return "provider_unavailable";
  if (status >= 500) return "provider_unavailable";
  if (status >= 400) return "invalid_request";
  return "provider_unavailable";
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

function describeCause(error: Error): string {
  const cause: unknown = error.cause;
  if (cause instanceof Error) {
    const nested: unknown = cause.cause;
    if (nested instanceof Error) return `${cause.message} (${nested.message})`;
    return cause.message;
  }
  return error.message;
}
