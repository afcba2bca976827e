import { type ErrorCode, GenqError } from "@genq/core";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fastifyPlugin from "fastify-plugin";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { httpStatusFor } from "../http-errors.ts";

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** Sends the standard error body for a GenqError. */
export function sendError(reply: FastifyReply, error: GenqError): FastifyReply {
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
  const status = httpStatusFor(error.code);
  if (status === 503) reply.header("retry-after", "5");
  return reply.status(status).send(body);
}

/** Fastify's own client errors, by their code. */
const FASTIFY_CLIENT_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: "payload_too_large", message: "request body is larger than the limit" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: "unsupported_media_type",
    message: "send the body as application/json (Content-Type: application/json)",
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: "invalid_request",
    message: "the body is empty but Content-Type is application/json; send a JSON object",
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: "invalid_request", message: "the body is not valid JSON" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: "invalid_request",
    message: "Content-Length does not match the body",
  },
};

/** Error codes of lost connections to Redis or Postgres: the service, not the client, is at fault. */
const UNAVAILABLE_PATTERNS = [
  /ECONNREFUSED/,
  /ECONNRESET/,
  /ETIMEDOUT/,
  /Connection is closed/,
  /enableOfflineQueue options is false/,
  /max retries per request/i,
  /Can't reach database server/,
  /Connection terminated/,
  /connect ENOENT/,
  /timeout exceeded when trying to connect/i,
];

/**
 * SQLSTATEs of a PostgreSQL server going away or not there yet: class 08 (connection
 * exception), 57P01–57P03 (terminated by an administrator, crash shutdown, shutting
 * down or starting up), 53300 (too many connections).
 */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;

/** What Prisma's pg driver adapter reports for a lost or refused connection. */
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);

/** A Prisma error's driver adapter cause (`{kind, originalCode}`), when it has one. */
function driverAdapterCause(error: Error): { kind?: unknown; originalCode?: unknown } | undefined {
  const meta = (error as { meta?: { driverAdapterError?: { cause?: unknown } } }).meta;
  const cause = meta?.driverAdapterError?.cause;
  return typeof cause === "object" && cause !== null ? cause : undefined;
}

function isUnavailable(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (code === "P1001" || code === "P1002" || code === "P2024") return true;
  if (typeof code === "string" && UNAVAILABLE_SQLSTATE.test(code)) return true;
  const adapterCause = driverAdapterCause(error);
  if (typeof adapterCause?.kind === "string" && UNAVAILABLE_ADAPTER_KINDS.has(adapterCause.kind)) return true;
  if (
    typeof adapterCause?.originalCode === "string" &&
    UNAVAILABLE_SQLSTATE.test(adapterCause.originalCode)
  ) {
    return true;
  }
  const text = `${error.name} ${error.message} ${error.cause instanceof Error ? error.cause.message : ""}`;
  return UNAVAILABLE_PATTERNS.some((pattern) => pattern.test(text));
}

/** Any error a route or hook throws, as the GenqError the API answers with. */
export function toGenqError(error: FastifyError, request: FastifyRequest): GenqError {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const location = error.validationContext ?? "body";
    const issues = error.validation.map((issue) => ({
      field: issue.instancePath.replace(/^\//, "").replaceAll("/", ".") || "(root)",
      code: issue.keyword,
      message: issue.message ?? "invalid",
    }));
    const first = issues[0];
    const where = first === undefined ? location : `${location}.${first.field}`.replace(/\.\(root\)$/, "");
    return new GenqError("invalid_request", `${where}: ${first?.message ?? "invalid"}`, {
      details: { location, field: first?.field, issues },
    });
  }
  if (GenqError.is(error)) return error;
  const known = error.code === undefined ? undefined : FASTIFY_CLIENT_ERRORS[error.code];
  if (known !== undefined) {
    const details =
      error.code === "FST_ERR_CTP_BODY_TOO_LARGE"
        ? { limitBytes: request.routeOptions.bodyLimit }
        : undefined;
    return new GenqError(known.code, known.message, details === undefined ? {} : { details });
  }
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
    return new GenqError("invalid_request", "the body is not valid JSON");
  }
  if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
    const code: ErrorCode =
      error.statusCode === 404 ? "not_found" : error.statusCode === 429 ? "rate_limited" : "invalid_request";
    return new GenqError(code, error.message);
  }
  if (isUnavailable(error)) {
    return new GenqError(
      "service_unavailable",
      "a backing service (Redis or Postgres) is unavailable; retry shortly",
      {
        retryable: true,
      },
    );
  }
  return new GenqError("internal_error", "an unexpected error occurred; it has been logged", {
    details: { requestId: request.id },
  });
}

/**
 * Fastify's `frameworkErrors` option: errors the router raises before any route,
 * hook or error handler runs (a malformed percent-encoding in the path, a path
 * parameter over the router's length limit). Without it Fastify answers them in
 * its own body, without a genq error code.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const genqError =
    error.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? new GenqError(
          "invalid_request",
          "a path segment is too long to name anything; check the id in the URL",
        )
      : error.code === "FST_ERR_BAD_URL"
        ? new GenqError(
            "invalid_request",
            "the URL is not valid: it has a malformed percent-encoding; encode path segments with encodeURIComponent",
          )
        : new GenqError("invalid_request", "the request could not be routed");
  const body: ErrorBody = { error: { code: genqError.code, message: genqError.message } };
  // This reply belongs to no route, so no hook or serializer runs: set everything here.
  reply
    .status(httpStatusFor(genqError.code))
    .header("x-request-id", request.id)
    .header("content-type", "application/json; charset=utf-8")
    .send(JSON.stringify(body));
}

/**
 * The one error handler: every failure becomes `{"error": {code, message, details}}`
 * with the status of its code. Stack traces stay in the logs.
 */
export const errorHandlerPlugin = fastifyPlugin(
  async (app: FastifyInstance) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const genqError = toGenqError(error, request);
      const status = httpStatusFor(genqError.code);
      if (status >= 500) request.log.error({ err: error }, "request failed");
      else request.log.info({ code: genqError.code }, genqError.message);
      return sendError(reply, genqError);
    });
    app.setNotFoundHandler((request, reply) =>
      sendError(
        reply,
        new GenqError(
          "not_found",
          `no route ${request.method} ${request.url.split("?")[0]}; see /docs for the API`,
        ),
      ),
    );
  },
  { name: "genq-error-handler" },
);
