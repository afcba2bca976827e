import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { $ZodType } from "zod/v4/core";
import { ERROR_STATUS_DESCRIPTIONS } from "../routes/error-response.ts";
import type { DocumentedResponse } from "./route-schema.ts";

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];
type JsonObject = Record<string, unknown>;

const SUCCESS_DESCRIPTIONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted: stored, and it will run",
  204: "Done; no body",
};

const RETRY_AFTER = {
  "retry-after": {
    description: "Seconds to wait before trying again (sent with `rate_limited` and `service_unavailable`)",
    type: "integer",
    minimum: 0,
  },
};

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Statuses the framework and the shared plugins answer on a route besides what its handler
 * does, so a route need not list them: a body Fastify cannot parse (400, 413, 415), an invalid
 * parameter (400), missing credentials (401), the write rate limit under /v1 and the operators'
 * failed-login limit (429), an unexpected error (500) and a backing service down (503).
 */
function frameworkStatuses(input: TransformInput): number[] {
  const original = input.schema ?? {};
  const method = String(input.route.method).toUpperCase();
  if (input.url.startsWith("/health/")) return [];
  const statuses = [500, 503];
  if (WRITE_METHODS.has(method)) statuses.push(400, 413, 415);
  if (original.params !== undefined || original.querystring !== undefined || original.headers !== undefined) {
    statuses.push(400);
  }
  const security = original.security;
  if (security === undefined || security.length > 0) statuses.push(401);
  const operator = security?.some((requirement) => "operator" in requirement) ?? false;
  if (operator || (input.url.startsWith("/v1/") && WRITE_METHODS.has(method))) statuses.push(429);
  return statuses;
}

function defaultDescription(status: number): string {
  return (
    SUCCESS_DESCRIPTIONS[status] ??
    ERROR_STATUS_DESCRIPTIONS[status as keyof typeof ERROR_STATUS_DESCRIPTIONS] ??
    `HTTP ${status}`
  );
}

/** A zod schema as the type provider prints it (refs to components), for a request (`input`) or a response. */
function toJsonSchema(
  input: TransformInput,
  schema: unknown,
  io: "input" | "output",
): Record<string, unknown> | undefined {
  if (!(schema instanceof $ZodType)) return schema as JsonObject | undefined;
  const probe = jsonSchemaTransform({
    ...input,
    schema: io === "input" ? { body: schema } : { response: { 200: schema } },
  } as TransformInput).schema as { body?: JsonObject; response?: Record<string, JsonObject> };
  return io === "input" ? probe.body : probe.response?.["200"];
}

function documentedContent(
  input: TransformInput,
  content: DocumentedResponse["content"],
  io: "input" | "output",
): Record<string, { schema: unknown }> {
  return Object.fromEntries(
    Object.entries(content).map(([mediaType, schema]) => [
      mediaType,
      { schema: toJsonSchema(input, schema, io) },
    ]),
  );
}

/**
 * `@fastify/swagger`'s per-route transform: the type provider's, plus what genq's routes
 * declare for the document only (see `route-schema.ts`): every response gets a description
 * (never "Default Response"), 429 and 503 a `Retry-After` header, and bodies and responses
 * a route reads or writes itself (JSONL, multipart, SSE) their media types and schemas.
 */
export function contractTransform(input: TransformInput): ReturnType<typeof jsonSchemaTransform> {
  const result = jsonSchemaTransform(input);
  const original = input.schema;
  if (original === undefined || original === null || result.schema.hide === true) return result;
  const schema = result.schema as JsonObject & { response?: Record<string, JsonObject> };
  delete schema.responseDescriptions;
  delete schema.documentedBody;
  delete schema.documentedResponses;
  delete schema.responseHeaders;

  const responses: Record<string, JsonObject> = {};
  for (const [status, json] of Object.entries(schema.response ?? {})) {
    const code = Number(status);
    const description = original.responseDescriptions?.[code] ?? defaultDescription(code);
    const content =
      "content" in json ? (json.content as JsonObject) : { "application/json": { schema: json } };
    const headers = {
      ...(code === 429 || code === 503 ? RETRY_AFTER : {}),
      ...original.responseHeaders?.[code],
    };
    responses[status] = {
      description,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      // `z.null()` (a 204): `@fastify/swagger` then prints no body at all.
      ...(json.type === "null" ? { type: "null" } : { content }),
    };
  }
  for (const [status, documented] of Object.entries(original.documentedResponses ?? {})) {
    if (documented === undefined) continue;
    // Besides the JSON a route's schema describes (e.g. JSONL on `Accept`), or alone.
    const existing = responses[status];
    responses[status] = {
      ...existing,
      description: documented.description,
      ...(documented.headers === undefined ? {} : { headers: documented.headers }),
      content: {
        ...(existing?.content as JsonObject | undefined),
        ...documentedContent(input, documented.content, "output"),
      },
    };
  }
  for (const code of frameworkStatuses(input)) {
    if (responses[code] !== undefined) continue;
    responses[code] = {
      description: defaultDescription(code),
      ...(code === 429 || code === 503 ? { headers: RETRY_AFTER } : {}),
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  schema.response = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));

  if (original.documentedBody !== undefined) {
    schema.body = {
      ...(original.documentedBody.description === undefined
        ? {}
        : { description: original.documentedBody.description }),
      content: documentedContent(input, original.documentedBody.content, "input"),
    };
  }
  return result;
}
