import { ApiError } from "@google/genai";
import { ProviderError, type ProviderErrorCode } from "../provider-error.ts";

/**
 * The `error` object of a Google API error body (`google.rpc.Status` in JSON):
 * `{ "error": { "code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...] } }`.
 */
export interface GoogleErrorBody {
  code?: number;
  message?: string;
  /** The canonical code name: `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, `UNAVAILABLE`, ... */
  status?: string;
  /** Typed detail messages, told apart by `@type` (`google.rpc.RetryInfo`, `QuotaFailure`, `ErrorInfo`, ...). */
  details?: unknown[];
}

/** `ErrorInfo` reasons that are about the key or its project, whatever the request. */
const KEY_REASONS = new Set(["SERVICE_DISABLED", "CONSUMER_SUSPENDED", "CONSUMER_INVALID"]);
/**
 * Messages of 403 PERMISSION_DENIED that are about the key: leaked, expired or
 * invalid keys, a call without any key ("Method doesn't allow unregistered
 * callers"), a suspended consumer.
 */
const KEY_MESSAGES = [/\bAPI key\b/i, /unregistered callers/i, /consumer .* (?:has been )?suspended/i];

const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure";
const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";

/**
 * Messages that mean the project cannot pay for the call: prepaid credits used up,
 * billing missing or disabled. Deliberately not "check your plan and billing
 * details": Google puts that sentence in every 429 it sends, per-minute limits included.
 */
const BILLING_PATTERNS = [
  /credits? (?:are|is|have been|has been) (?:depleted|exhausted)/i,
  /prepay(?:ment)? (?:credit|balance)/i,
  /enable billing/i,
  /billing account/i,
  /billing (?:is )?(?:disabled|not enabled|not active)/i,
];

/**
 * Maps anything `@google/genai` (or our code around it) throws into the
 * {@link ProviderError} taxonomy, keeping the HTTP status.
 *
 * The SDK's `ApiError` carries only the status and the response body serialized
 * into its message, no headers; Google sends its retry hint in the body instead
 * (`google.rpc.RetryInfo`), so that is where `retryAfterMs` comes from. A 429 is
 * told apart by its details, not its message: a per-minute limit is `rate_limited`,
 * while a daily quota, a free-tier limit of 0 or depleted prepaid credits cannot
 * succeed on this key before a reset or an operator acts, so they are
 * `credit_exhausted` (not retryable).
 *
 * An `AbortError` maps to `canceled`; the adapter, which knows whether the
 * caller's signal fired, turns the SDK's own timeout abort into `timeout`.
 */
export function mapGeminiError(error: unknown, provider: string): ProviderError {
  if (error instanceof ProviderError) return error;

  if (isAbortError(error)) {
    return new ProviderError("canceled", `${provider}: the request was canceled`, { provider, cause: error });
  }

  if (isApiError(error)) {
    const body = parseGoogleErrorBody(error.message);
    const status = error.status;
    const code = classifyApiError(status, body);
    const retryAfterMs = code === "credit_exhausted" ? undefined : retryDelayOf(body);
    const description = body?.message?.trim() || error.message;
    return new ProviderError(code, `${provider}: ${body?.status ? `${body.status}: ` : ""}${description}`, {
      provider,
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      cause: error,
    });
  }

  // Node's fetch rejects with a TypeError ("fetch failed", "terminated") when the
  // connection is refused, reset or cut mid-body.
  if (error instanceof TypeError) {
    return new ProviderError(
      "provider_unavailable",
      `${provider}: could not connect: ${describeCause(error)}`,
      { provider, cause: error },
    );
  }

  const message = error instanceof Error ? error.message : String(error);
  // The SDK validates some parameters itself and throws a plain Error before any
  // request is made; sending the same parameters again cannot help.
  if (/parameter is only supported in|is not supported|\b(?:is|are) required\b/i.test(message)) {
    return new ProviderError("invalid_request", `${provider}: ${message}`, { provider, cause: error });
  }
  // A malformed response (a bad stream chunk, an empty body) is the provider's
  // fault and may not repeat, so it is worth another attempt.
  return new ProviderError("provider_unavailable", `${provider}: ${message}`, { provider, cause: error });
}

/**
 * The Google error body inside an `ApiError` message. The SDK serializes the body
 * as the whole message for HTTP errors, and as `got status: <STATUS>. <json>` for
 * an error sent as a stream chunk. Undefined when the message holds no such body.
 */
export function parseGoogleErrorBody(message: string): GoogleErrorBody | undefined {
  const parsed = parseJsonFrom(message, ["[", "{"]);
  if (!isRecord(parsed)) return undefined;
  // Endpoints that stream JSON arrays (streamGenerateContent without alt=sse, and
  // proxies in front of it) wrap the status in a one-element array.
  const container = Array.isArray(parsed) ? parsed[0] : parsed;
  const inner = isRecord(container) ? container.error : undefined;
  if (!isRecord(inner)) return undefined;
  const body: GoogleErrorBody = {};
  if (typeof inner.code === "number") body.code = inner.code;
  if (typeof inner.message === "string") body.message = inner.message;
  if (typeof inner.status === "string") body.status = inner.status;
  if (Array.isArray(inner.details)) body.details = inner.details;
  return body;
}

/** The JSON value that starts at the first of `openers` in `text` and runs to its end, if it parses. */
function parseJsonFrom(text: string, openers: string[]): unknown {
  for (const opener of openers) {
    const start = text.indexOf(opener);
    if (start === -1) continue;
    try {
      return JSON.parse(text.slice(start));
    } catch {
      // The opener was part of the prose; try the next kind.
    }
  }
  return undefined;
}

/**
 * Milliseconds from a `google.protobuf.Duration` in its JSON form (`"7s"`,
 * `"0.250s"`, `"21599.960323804s"`). Undefined when `value` is not one.
 */
export function parseGoogleDuration(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  if (match?.[1] === undefined) return undefined;
  return Math.ceil(Number(match[1]) * 1000);
}

function classifyApiError(status: number, body: GoogleErrorBody | undefined): ProviderErrorCode {
  const googleStatus = body?.status;
  const message = body?.message ?? "";
  const reasons = errorInfoReasons(body);

  // An invalid key comes back as 400 INVALID_ARGUMENT, so the reason must win over the status.
  if (reasons.some((reason) => KEY_REASONS.has(reason) || reason.startsWith("API_KEY_"))) {
    return "auth_failed";
  }
  if (BILLING_PATTERNS.some((pattern) => pattern.test(message))) return "credit_exhausted";
  if (status === 401 || googleStatus === "UNAUTHENTICATED") return "auth_failed";
  if (status === 403 || googleStatus === "PERMISSION_DENIED") {
    // Only a denial that names the key takes it out of rotation; "The caller does not
    // have permission" for one model, or a file or tuned model of another project,
    // is about the request, and the key keeps serving the others.
    return KEY_MESSAGES.some((pattern) => pattern.test(message)) ? "auth_failed" : "invalid_request";
  }

  if (status === 429 || googleStatus === "RESOURCE_EXHAUSTED") {
    return quotaCannotRecoverSoon(body) ? "credit_exhausted" : "rate_limited";
  }
  if (/exceeds the maximum number of tokens/i.test(message)) return "context_length_exceeded";
  if (status === 504 || googleStatus === "DEADLINE_EXCEEDED") return "timeout";
  if (status === 408) return "timeout";
  if (status >= 500) return "provider_unavailable";
  // 400 INVALID_ARGUMENT / FAILED_PRECONDITION, 404 NOT_FOUND (an unknown model),
  // 413 and the rest: the same request would fail again.
  if (status >= 400) return "invalid_request";
  return "provider_unavailable";
}

/**
 * True when a 429 reports a quota that will not refill within a retry's wait: a
 * per-day quota, or a limit of 0 (the model is not available on the key's tier at
 * all). Google still attaches a RetryInfo of a few seconds to these, which would
 * only burn attempts.
 */
function quotaCannotRecoverSoon(body: GoogleErrorBody | undefined): boolean {
  if (/\blimit: 0\b/.test(body?.message ?? "")) return true;
  for (const detail of body?.details ?? []) {
    if (!isRecord(detail) || detail["@type"] !== QUOTA_FAILURE_TYPE) continue;
    const violations = Array.isArray(detail.violations) ? detail.violations : [];
    for (const violation of violations) {
      if (!isRecord(violation)) continue;
      if (typeof violation.quotaId === "string" && /PerDay/i.test(violation.quotaId)) return true;
      if (violation.quotaValue === "0") return true;
    }
  }
  return false;
}

/** The wait Google asked for: its RetryInfo detail, or the "Please retry in 7.04s." sentence. */
function retryDelayOf(body: GoogleErrorBody | undefined): number | undefined {
  for (const detail of body?.details ?? []) {
    if (isRecord(detail) && detail["@type"] === RETRY_INFO_TYPE) {
      const delay = parseGoogleDuration(detail.retryDelay);
      if (delay !== undefined) return delay;
    }
  }
  const sentence = /Please retry in (\d+(?:\.\d+)?)s/i.exec(body?.message ?? "");
  return sentence?.[1] === undefined ? undefined : Math.ceil(Number(sentence[1]) * 1000);
}

function errorInfoReasons(body: GoogleErrorBody | undefined): string[] {
  const reasons: string[] = [];
  for (const detail of body?.details ?? []) {
    if (isRecord(detail) && detail["@type"] === ERROR_INFO_TYPE && typeof detail.reason === "string") {
      reasons.push(detail.reason);
    }
  }
  return reasons;
}

/**
 * Recognizes the SDK's ApiError by name and shape too, since a second copy of the
 * SDK (a CommonJS consumer, a bundled dependency) has its own class.
 */
function isApiError(error: unknown): error is ApiError {
  if (error instanceof ApiError) return true;
  return (
    error instanceof Error &&
    error.name === "ApiError" &&
    typeof (error as { status?: unknown }).status === "number"
  );
}

function isAbortError(error: unknown): boolean {
  return (
    (error instanceof Error || (typeof DOMException !== "undefined" && error instanceof DOMException)) &&
    error.name === "AbortError"
  );
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
