import { type ErrorCode, GenqError } from "@genq/core";
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { httpStatusFor } from "../http-errors.ts";
import { toGenqError } from "../plugins/error-handler.ts";

/** OpenAI's error body: `{error: {message, type, param, code}}`. */
export const OpenAIErrorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .meta({ id: "OpenAIError" });
export type OpenAIErrorBody = z.infer<typeof OpenAIErrorBody>;

/**
 * OpenAI's error `type` for each genq code. `code` stays genq's own (from its
 * catalogue), so a client can tell a quota refusal from a rate limit exactly as on
 * /v1; `type` is what OpenAI's SDK and client code look at.
 */
function openAIErrorType(code: ErrorCode): string {
  switch (code) {
    case "unauthorized":
      return "authentication_error";
    case "forbidden":
      return "permission_error";
    case "quota_exceeded":
      return "insufficient_quota";
    case "rate_limited":
      return "rate_limit_error";
    case "service_unavailable":
    case "internal_error":
    case "provider_unavailable":
    case "credit_exhausted":
    case "auth_failed":
    case "timeout":
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

/** The field a genq error names, as OpenAI's `param`. */
function paramOf(error: GenqError): string | null {
  const field = error.details?.field;
  return typeof field === "string" && field !== "(root)" ? field : null;
}

/** A genq error as OpenAI's error body. */
export function toOpenAIError(error: GenqError): OpenAIErrorBody {
  return {
    error: {
      message: error.message,
      type: openAIErrorType(error.code),
      param: paramOf(error),
      code: error.code,
    },
  };
}

/** An error code's body and status for a failed request line of an error file. */
export function requestErrorResponse(
  code: ErrorCode,
  message: string,
): { statusCode: number; body: OpenAIErrorBody } {
  return {
    statusCode: httpStatusFor(code),
    body: { error: { message, type: openAIErrorType(code), param: null, code } },
  };
}

function send(reply: FastifyReply, error: GenqError): FastifyReply {
  const status = httpStatusFor(error.code);
  if (status === 503) reply.header("retry-after", "5");
  return reply.status(status).send(toOpenAIError(error));
}

/**
 * Answers every failure of the scope it is called in (an encapsulated plugin, not
 * wrapped with fastify-plugin) in OpenAI's error body, with the status genq's
 * error handler would give.
 */
export function useOpenAIErrors(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const genqError = toGenqError(error, request);
    if (httpStatusFor(genqError.code) >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ code: genqError.code }, genqError.message);
    return send(reply, genqError);
  });
  app.setNotFoundHandler((request, reply) =>
    send(
      reply,
      new GenqError(
        "not_found",
        `no route ${request.method} ${request.url.split("?")[0]} in genq's OpenAI API`,
      ),
    ),
  );
}
