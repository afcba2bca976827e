import { type ErrorCode, isErrorCode } from "./errors.ts";

/**
 * What a user is told when a job fails with each code. Provider error text can name
 * internal hosts, ports, keys or other tenants' request details, so it never reaches
 * users; operators read it in the provider call log (`GET /v1/admin/jobs/:id/calls`)
 * and the worker logs. A `Record` over every code: a new code cannot be forgotten.
 */
export const PUBLIC_ERROR_MESSAGES: Readonly<Record<ErrorCode, string>> = {
  invalid_request: "The request was rejected as invalid; check the job's input, model and options.",
  unauthorized: "The request was not authenticated.",
  forbidden: "The request is not allowed.",
  not_found: "Something the job needs was not found.",
  idempotency_conflict: "The idempotency key was already used for a different request.",
  conflict: "The job conflicted with another change.",
  payload_too_large: "The input or the result was too large.",
  unsupported_media_type: "The input's media type is not supported.",
  rate_limited: "The provider is rate limiting requests; try again later.",
  quota_exceeded: "The job does not fit in the remaining quota.",
  credit_exhausted: "The provider account serving this job has no credit left; the operator has been told.",
  content_filtered: "The provider's content filter blocked the request or its output.",
  context_length_exceeded: "The input is longer than the model's context window.",
  auth_failed: "The provider did not accept the credentials used for this job.",
  provider_unavailable: "The provider was unavailable; try again later.",
  timeout: "The job did not finish within its time limit.",
  canceled: "The job was canceled.",
  service_unavailable: "A service the job needs was unavailable; try again later.",
  internal_error: "The job failed because of an internal error.",
};

/** A failure as users see it: the code and the generic message of that code. */
export interface PublicFailure {
  code: string;
  message: string;
}

/** Provider request ids are echoed only when they look like one (no spaces, URLs or markup). */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The generic message of `code` (the internal error's for a code outside the catalogue). */
export function publicErrorMessage(code: string): string {
  return PUBLIC_ERROR_MESSAGES[isErrorCode(code) ? code : "internal_error"];
}

/**
 * The failure users may see for `error`: its code, the code's generic message and,
 * when the provider named one, its request id (what a user quotes to support). The
 * error's own message stays with the operators. One exception: an `invalid_request`
 * genq raised itself before calling any provider (a plain `GenqError`, not a provider's
 * error or a failed route wrapping one: an unknown provider, a text-only model for an
 * image job) keeps genq's message, which names what to fix and holds no provider text.
 */
export function toPublicFailure(error: {
  code: string;
  name?: string | undefined;
  message?: string | undefined;
  details?: Record<string, unknown> | undefined;
}): PublicFailure {
  const code = isErrorCode(error.code) ? error.code : "internal_error";
  if (code === "invalid_request" && error.name === "GenqError" && error.message !== undefined) {
    return { code, message: error.message };
  }
  const requestId = error.details?.requestId;
  const suffix =
    typeof requestId === "string" && REQUEST_ID_PATTERN.test(requestId)
      ? ` Provider request id: ${requestId}.`
      : "";
  return { code, message: `${PUBLIC_ERROR_MESSAGES[code]}${suffix}` };
}
