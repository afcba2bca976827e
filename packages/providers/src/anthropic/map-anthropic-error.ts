import Anthropic from "@anthropic-ai/sdk";
import { parseRetryAfter } from "../parse-retry-after.ts";
import { ProviderError, type ProviderErrorCode } from "../provider-error.ts";

/**
 * `error.details.error_code`s that mean the account may not spend more, whatever
 * status carries them (the spend limits come as 429s): waiting does not help.
 */
const CREDIT_ERROR_CODES = new Set([
  "contract_spend_limit_reached",
  "enforced_spend_limit_reached",
  "linked_organization_spend_limit_reached",
  "linked_organization_billing_unavailable",
  "user_profile_billing_not_authorized",
  "user_profile_not_billable",
]);

/**
 * Anthropic reports an empty prepaid balance as a plain 400
 * `invalid_request_error` ("Your credit balance is too low to access the
 * Anthropic API. Please go to Plans & Billing ..."), so only the message tells it
 * apart from a malformed request.
 */
const CREDIT_MESSAGE = /credit balance|billing/i;
/**
 * Likewise a prompt over the context window: "prompt is too long: 208310 tokens >
 * 200000 maximum", or "input length and `max_tokens` exceed context limit: ...".
 */
const CONTEXT_LENGTH_MESSAGE = /prompt is too long|exceed context limit/i;

/**
 * Maps anything `@anthropic-ai/sdk` (or our own code around it) throws into the
 * {@link ProviderError} taxonomy, keeping the HTTP status, the request id and any
 * Retry-After. The body's error `type` and `error_code` win over the status, as
 * an error event inside a stream has no status of its own.
 */
export function mapAnthropicError(error: unknown, provider: string): ProviderError {
  if (error instanceof ProviderError) return error;

  if (error instanceof Anthropic.APIUserAbortError || isAbortError(error)) {
    return new ProviderError("canceled", `${provider}: the request was canceled`, { provider, cause: error });
  }
  // Checked before APIConnectionError, which it extends.
  if (error instanceof Anthropic.APIConnectionTimeoutError) {
    return new ProviderError("timeout", `${provider}: the request timed out`, { provider, cause: error });
  }
  if (error instanceof Anthropic.APIConnectionError) {
    return new ProviderError(
      "provider_unavailable",
      `${provider}: could not connect: ${describeCause(error)}`,
      {
        provider,
        cause: error,
      },
    );
  }

  if (error instanceof Anthropic.APIError) {
    const status = error.status;
    const message = error.apiMessage ?? error.message;
    const code = classifyAPIError(status, error.type ?? undefined, error.errorCode ?? undefined, message);
    const retryAfterMs = parseRetryAfter(error.headers);
    const requestId = error.requestID || requestIdFromBody(error.error);
    return new ProviderError(code, `${provider}: ${error.message}`, {
      provider,
      ...(status === undefined ? {} : { status }),
      ...(requestId ? { requestId } : {}),
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
 * router takes the key out of rotation for those): `authentication_error` and the
 * billing and spend-limit errors. A `permission_error` (403) is about the model or
 * feature asked for, so it fails the job as `invalid_request` and leaves the key alone.
 */
function classifyAPIError(
  status: number | undefined,
  type: string | undefined,
  errorCode: string | undefined,
  message: string,
): ProviderErrorCode {
  if (type === "billing_error" || status === 402) return "credit_exhausted";
  if (errorCode !== undefined && CREDIT_ERROR_CODES.has(errorCode)) return "credit_exhausted";
  if (status === 400 || type === "invalid_request_error") {
    if (CREDIT_MESSAGE.test(message)) return "credit_exhausted";
    if (CONTEXT_LENGTH_MESSAGE.test(message)) return "context_length_exceeded";
  }

  switch (type) {
    case "rate_limit_error":
      return "rate_limited";
    case "overloaded_error":
    case "api_error":
      return "provider_unavailable";
    case "timeout_error":
      return "timeout";
    case "authentication_error":
      return "auth_failed";
    // "Your API key does not have permission to use the specified resource": a model
    // or feature this key may not use; the key still serves everything else.
    case "permission_error":
    case "invalid_request_error":
    case "not_found_error":
      return "invalid_request";
  }

  if (status === undefined) {
    // An error event of an unknown type inside a stream: the server gave up mid-answer.
    return "provider_unavailable";
  }
  if (status === 429) return "rate_limited";
  if (status === 401) return "auth_failed";
  if (status === 403) return "invalid_request";
  if (status === 408) return "timeout";
  // 409 is a lock timeout that the SDK itself would retry.
  if (status === 409) return "provider_unavailable";
  // 5xx includes Anthropic's own 529 overloaded.
  if (status >= 500) return "provider_unavailable";
  if (status >= 400) return "invalid_request";
  return "provider_unavailable";
}

/** Anthropic repeats the request id in error bodies, including error events inside a stream. */
function requestIdFromBody(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("request_id" in body)) return undefined;
  return typeof body.request_id === "string" && body.request_id !== "" ? body.request_id : undefined;
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
