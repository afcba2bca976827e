import { ERROR_CODES } from "@genq/core";
import { z } from "zod";

/** The error catalogue: every `error.code` the API can answer. */
export const ErrorCode = z.enum(ERROR_CODES).meta({
  id: "ErrorCode",
  description: "What went wrong, from genq's closed catalogue; the HTTP status follows from it",
});

/** The body of every error response, for the OpenAPI document. */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: ErrorCode,
      message: z.string().describe("What to fix, for a person"),
      details: z
        .record(z.string(), z.unknown())
        .optional()
        .describe("Data a client can act on: the invalid field, a limit, the conflicting job"),
    }),
  })
  .meta({
    id: "Error",
    description: "The error envelope every 4xx and 5xx answer carries",
    examples: [
      {
        error: {
          code: "invalid_request",
          message: "body.input.prompt: Too small: expected string to have >=1 characters",
          details: { location: "body", field: "input.prompt" },
        },
      },
    ],
  });

/** Error statuses a route can document, with what each means in genq. */
export const ERROR_STATUS_DESCRIPTIONS = {
  400: "The request is invalid (`invalid_request`); `error.details` names the field and `error.message` says what to fix",
  401: "No valid credentials (`unauthorized`): send `Authorization: Bearer <api key>`",
  403: "The credentials may not do this (`forbidden`), e.g. a priority the plan does not include",
  404: "Nothing with that id belongs to the caller (`not_found`)",
  409: "The request conflicts with the resource's state (`conflict`, `idempotency_conflict`)",
  413: "The body is larger than the route's limit (`payload_too_large`); `error.details.limitBytes` says how large it may be",
  415: "The Content-Type is not one the route accepts (`unsupported_media_type`)",
  422: "The provider refused the content (`content_filtered`)",
  429: "Too many requests (`rate_limited`, with `Retry-After`) or over the plan's quota (`quota_exceeded`)",
  500: "An unexpected error (`internal_error`); it has been logged under `error.details.requestId`",
  502: "The provider failed (`provider_unavailable`, `auth_failed`, `credit_exhausted`)",
  503: "A backing service is unavailable or the feature is not configured (`service_unavailable`); retry after `Retry-After` seconds",
  504: "The provider did not answer in time (`timeout`)",
} as const;

/** A status {@link errorResponses} knows. */
export type ErrorStatus = keyof typeof ERROR_STATUS_DESCRIPTIONS;

/**
 * The error responses of a route, each the {@link ErrorResponse} envelope:
 * `response: { 200: JobView, ...errorResponses(400, 401, 404) }`. List every status the
 * route can answer; the document adds the description and, for 429 and 503, `Retry-After`.
 */
export function errorResponses<const Statuses extends readonly ErrorStatus[]>(
  ...statuses: Statuses
): Record<Statuses[number], typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorResponse])) as Record<
    Statuses[number],
    typeof ErrorResponse
  >;
}
