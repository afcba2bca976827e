import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";

const CONTRACT_PATH = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "contract",
  "openapi.json",
);
const DOCUMENT_ID = "genq-openapi.json";
/**
 * Not described by genq's document: Bull Board, the API docs themselves, OpenAI's own
 * routes, and Prometheus' scrape endpoint (its exposition format, docs/operations.md).
 */
const EXCLUDED = [/^\/admin\/queues(\/|$)/, /^\/docs(\/|$)/, /^\/openai\/v1(\/|$)/, /^\/metrics$/];

type JsonObject = Record<string, unknown>;
interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: JsonObject }> }>;
}

/** One response the suite received, as the contract check sees it. */
export interface RecordedResponse {
  method: string;
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

/** A response that does not match the document, and why. */
export interface ContractMismatch {
  request: string;
  problem: string;
}

let contract:
  | { paths: Array<{ pattern: RegExp; item: Record<string, Operation> }>; ajv: Ajv2020 }
  | undefined;

function loadContract() {
  if (contract !== undefined) return contract;
  const text = readFileSync(CONTRACT_PATH, "utf8").replaceAll(
    '"#/components/',
    `"${DOCUMENT_ID}#/components/`,
  );
  const document = JSON.parse(text) as { paths: Record<string, Record<string, Operation>> } & JsonObject;
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: DOCUMENT_ID, components: document.components }, DOCUMENT_ID);
  // Literal paths first, so `/v1/batches/{id}/results.jsonl` is not taken for a template.
  const paths = Object.entries(document.paths)
    .sort(([a], [b]) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0))
    .map(([path, item]) => ({
      pattern: new RegExp(
        `^${path
          .replace(/[.+?^$()|[\]\\]/g, "\\$&")
          .replace(/\{key\}$/, "(.+)")
          .replace(/\{[^}]+\}/g, "[^/]+")}$`,
      ),
      item,
    }));
  contract = { paths, ajv };
  return contract;
}

const validators = new WeakMap<JsonObject, ValidateFunction>();

function validatorFor(ajv: Ajv2020, schema: JsonObject): ValidateFunction {
  let validate = validators.get(schema);
  if (validate === undefined) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

/** Every `example` of a request body or success response that does not validate against its schema. */
export function invalidExamples(): string[] {
  const { ajv } = loadContract();
  const document = JSON.parse(
    readFileSync(CONTRACT_PATH, "utf8").replaceAll('"#/components/', `"${DOCUMENT_ID}#/components/`),
  ) as { paths: Record<string, Record<string, JsonObject>> };
  const problems: string[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const bodies = [
        ["request", (operation.requestBody as JsonObject | undefined)?.content],
        ...Object.entries((operation.responses ?? {}) as Record<string, JsonObject>).map(
          ([status, response]) => [status, response.content],
        ),
      ] as Array<[string, Record<string, { schema?: JsonObject; example?: unknown }> | undefined]>;
      for (const [where, content] of bodies) {
        for (const [mediaType, media] of Object.entries(content ?? {})) {
          if (media.example === undefined || media.schema === undefined) continue;
          const validate = validatorFor(ajv, media.schema);
          if (!validate(media.example)) {
            problems.push(
              `${method.toUpperCase()} ${path} ${where} ${mediaType}: ${ajv.errorsText(validate.errors)}`,
            );
          }
        }
      }
    }
  }
  return problems;
}

/** The JSON values a body holds for its media type: the body, each JSONL line, each SSE event's data. */
function bodyValues(mediaType: string, body: string): unknown[] | undefined {
  if (mediaType === "application/json") return [JSON.parse(body)];
  if (mediaType === "application/x-ndjson" || mediaType === "application/jsonl") {
    return body
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line));
  }
  if (mediaType === "text/event-stream") {
    return body
      .split(/\n\n/)
      .map((event) =>
        event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n"),
      )
      .filter((data) => data !== "")
      .map((data) => JSON.parse(data));
  }
  return undefined;
}

/**
 * The path as the router matches it: dot segments resolved, as the URL parser does
 * (`/admin/./queues` is Bull Board's, `/health/./live` the probe's). Percent-escapes
 * stay: the router does not take `%2F` for a separator.
 */
function routedPath(path: string): string {
  try {
    return new URL(path, "http://genq.invalid").pathname;
  } catch {
    return path;
  }
}

const ERROR_SCHEMA = { $ref: `${DOCUMENT_ID}#/components/schemas/Error` };

/** Whether a response's body is genq's error body (`{"error": {code, message}}`). */
function isErrorBody(ajv: Ajv2020, response: RecordedResponse): boolean {
  if (!response.contentType?.startsWith("application/json")) return false;
  try {
    return validatorFor(ajv, ERROR_SCHEMA)(JSON.parse(response.body));
  } catch {
    return false;
  }
}

/** Checks one response against contract/openapi.json; undefined when it matches. */
export function checkResponse(response: RecordedResponse): string | undefined {
  const path = routedPath(response.url.split("?")[0] ?? "");
  if (EXCLUDED.some((pattern) => pattern.test(path))) return undefined;
  const { paths, ajv } = loadContract();
  const item = paths.find(({ pattern }) => pattern.test(path))?.item;
  if (response.method === "HEAD") {
    // Fastify answers HEAD for every GET route: the GET's statuses, without a body.
    const get = item?.get;
    if (get === undefined)
      return response.status >= 400 && response.status < 500 ? undefined : "no such operation";
    return get.responses?.[String(response.status)] === undefined
      ? `status ${response.status} is not listed`
      : undefined;
  }
  const operation = item?.[response.method.toLowerCase()];
  if (operation === undefined) {
    // The router's (or a hook's) refusal of a path or method no route has: a coded client error.
    if (response.status >= 400 && response.status < 500 && isErrorBody(ajv, response)) return undefined;
    return "no such operation in the document";
  }
  const described = operation.responses?.[String(response.status)];
  if (described === undefined) return `status ${response.status} is not listed`;
  if (described.content === undefined) {
    return response.body === "" ? undefined : "a body where the document lists none";
  }
  const mediaType = response.contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  const media = described.content[mediaType];
  if (media === undefined) {
    return `content type ${mediaType || "(none)"} is not listed (${Object.keys(described.content).join(", ")})`;
  }
  if (media.schema === undefined) return undefined;
  let values: unknown[] | undefined;
  try {
    values = bodyValues(mediaType, response.body);
  } catch {
    return `the body is not valid ${mediaType}`;
  }
  const validate = validatorFor(ajv, media.schema);
  for (const value of values ?? []) {
    if (!validate(value)) {
      return `body: ${ajv.errorsText(validate.errors)}; ${JSON.stringify(value).slice(0, 300)}`;
    }
  }
  return undefined;
}

/**
 * Records every response `app.inject` returns, to be checked against the committed
 * contract with {@link ContractRecorder.mismatches}.
 */
export class ContractRecorder {
  readonly #responses: RecordedResponse[] = [];

  /** Wraps `app.inject` (promise form) so each response is recorded. */
  attach(app: FastifyInstance): void {
    const inject = app.inject.bind(app) as (options: unknown) => Promise<LightMyRequestResponse>;
    const recorded = (options: unknown) => {
      const promise = inject(options);
      return promise.then((response) => {
        this.record(options, response);
        return response;
      });
    };
    (app as unknown as { inject: unknown }).inject = (options?: unknown, callback?: unknown) =>
      options === undefined || callback !== undefined
        ? (inject as (...args: unknown[]) => unknown)(options, callback)
        : recorded(options);
  }

  record(options: unknown, response: LightMyRequestResponse): void {
    const request = (typeof options === "string" ? { url: options } : options) as {
      method?: string;
      url?: string | { pathname?: string };
      path?: string;
    };
    const url = typeof request.url === "string" ? request.url : (request.url?.pathname ?? request.path ?? "");
    const contentType = response.headers["content-type"];
    this.#responses.push({
      method: (request.method ?? "GET").toUpperCase(),
      url,
      status: response.statusCode,
      contentType: Array.isArray(contentType) ? contentType[0] : contentType?.toString(),
      body: response.body,
    });
  }

  /** The recorded responses that do not match the document. */
  mismatches(): ContractMismatch[] {
    const found: ContractMismatch[] = [];
    for (const response of this.#responses) {
      const problem = checkResponse(response);
      if (problem !== undefined) {
        found.push({ request: `${response.method} ${response.url} → ${response.status}`, problem });
      }
    }
    return found;
  }
}
