import { isDeepStrictEqual } from "node:util";
import { jsonSchemaTransformObject } from "fastify-type-provider-zod";
import { z } from "zod";
import { DOCUMENTED_AS } from "./documented-as.ts";
import { WebhookEvent } from "./event-schemas.ts";
import { synthesizeExample } from "./synthesize-example.ts";

type TransformObjectInput = Parameters<typeof jsonSchemaTransformObject>[0];
type JsonObject = Record<string, unknown>;
type Document = JsonObject & {
  paths?: Record<string, Record<string, JsonObject>>;
  components?: JsonObject & { schemas?: Record<string, JsonObject> };
};

const REF_PREFIX = "#/components/schemas/";
const METHODS = new Set(["get", "put", "post", "delete", "patch", "head", "options"]);

/** Applies `visit` to every object in `value`, depth first. */
function walk(value: unknown, visit: (node: JsonObject) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
  } else if (typeof value === "object" && value !== null) {
    visit(value as JsonObject);
    for (const child of Object.values(value)) walk(child, visit);
  }
}

function renameRefs(value: unknown, renames: ReadonlyMap<string, string>): void {
  walk(value, (node) => {
    const ref = node.$ref;
    if (typeof ref === "string" && ref.startsWith(REF_PREFIX)) {
      const target = renames.get(ref.slice(REF_PREFIX.length));
      if (target !== undefined) node.$ref = `${REF_PREFIX}${target}`;
    }
  });
}

/**
 * The type provider prints every named schema twice, `X` for responses and `XInput` for
 * requests. Where the two read the same (no defaults or transforms in them), keep `X` only.
 */
function mergeInputTwins(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  for (;;) {
    const renames = new Map<string, string>();
    for (const name of Object.keys(schemas)) {
      const output = name.replace(/Input$/, "");
      if (output === name || schemas[output] === undefined) continue;
      const asOutput = structuredClone(schemas[name]);
      renameRefs(asOutput, new Map([[name, output]]));
      if (isDeepStrictEqual(asOutput, schemas[output])) renames.set(name, output);
    }
    if (renames.size === 0) return;
    for (const name of renames.keys()) delete schemas[name];
    renameRefs(document, renames);
  }
}

/** Replaces each `documentedAs(id)` placeholder with a reference to its component. */
function resolveDocumentedAs(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  walk(document, (node) => {
    const id = node[DOCUMENTED_AS];
    if (typeof id !== "string") return;
    delete node[DOCUMENTED_AS];
    // An input twin merged into its output form (they read the same) goes by the output name.
    const target = schemas[id] === undefined ? id.replace(/Input$/, "") : id;
    if (schemas[target] === undefined) throw new Error(`documentedAs: no component ${id} in the document`);
    node.$ref = `${REF_PREFIX}${target}`;
  });
}

/**
 * A schema only requests use is left as its input twin `XInput`; give it its own name `X`.
 * (Only twins of registered ids: `TextJobInput` is a name of its own.)
 */
function nameRequestOnlyTwins(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  const registered = (z.globalRegistry as unknown as { _idmap: Map<string, unknown> })._idmap;
  const renames = new Map<string, string>();
  for (const name of Object.keys(schemas)) {
    const output = name.replace(/Input$/, "");
    if (output === name || !registered.has(output) || schemas[output] !== undefined) continue;
    renames.set(name, output);
  }
  for (const [from, to] of renames) {
    schemas[to] = schemas[from] as JsonObject;
    delete schemas[from];
  }
  renameRefs(document, renames);
}

/** Drops components nothing refers to (each named schema is printed whether a route uses it or not). */
function dropUnusedSchemas(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  const used = new Set<string>();
  const pending: unknown[] = [{ ...document, components: { ...document.components, schemas: {} } }];
  while (pending.length > 0) {
    walk(pending.pop(), (node) => {
      const ref = node.$ref;
      if (typeof ref !== "string" || !ref.startsWith(REF_PREFIX)) return;
      const name = ref.slice(REF_PREFIX.length);
      if (used.has(name)) return;
      used.add(name);
      pending.push(schemas[name]);
    });
  }
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}

/** Gives each JSON request body and success response its schema's first example. */
function addMediaExamples(document: Document): void {
  const schemas = document.components?.schemas ?? {};
  const exampleOf = (schema: JsonObject | undefined): unknown => {
    if (schema === undefined) return undefined;
    if (Array.isArray(schema.examples)) return schema.examples[0];
    const ref = schema.$ref;
    if (typeof ref === "string" && ref.startsWith(REF_PREFIX))
      return exampleOf(schemas[ref.slice(REF_PREFIX.length)]);
    return undefined;
  };
  const fill = (content: unknown) => {
    for (const [mediaType, media] of Object.entries((content ?? {}) as Record<string, JsonObject>)) {
      if (mediaType === "multipart/form-data") continue;
      if (media.example !== undefined || media.examples !== undefined) continue;
      const schema = media.schema as JsonObject | undefined;
      if (schema === undefined || schema.contentMediaType !== undefined) continue;
      media.example = exampleOf(schema) ?? synthesizeExample(schema, schemas);
    }
  };
  for (const pathItem of Object.values(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(pathItem)) {
      if (!METHODS.has(method)) continue;
      fill((operation.requestBody as JsonObject | undefined)?.content);
      for (const [status, response] of Object.entries(
        (operation.responses ?? {}) as Record<string, JsonObject>,
      )) {
        if (status.startsWith("2")) fill(response.content);
      }
    }
  }
}

/** The webhook events genq POSTs, as OpenAPI 3.1 `webhooks`, one per event type. */
function webhooks(): JsonObject {
  const TYPES: Array<[string, string, string]> = [
    ["job.completed", "JobWebhookEvent", "A job completed; read it (`data.links.job`) for the result"],
    ["job.failed", "JobWebhookEvent", "A job failed for good; `data.error` says why"],
    ["job.canceled", "JobWebhookEvent", "A job was canceled"],
    ["batch.progress", "BatchWebhookEvent", "More of a batch's items finished (at most about one a second)"],
    ["batch.completed", "BatchWebhookEvent", "Every item of a batch finished"],
    [
      "webhook_endpoint.disabled",
      "WebhookEndpointWebhookEvent",
      "One of the user's endpoints was disabled; sent to the others",
    ],
  ];
  return Object.fromEntries(
    TYPES.map(([type, schema, summary]) => [
      type,
      {
        post: {
          operationId: `on${type.replace(/(^|[._])(\w)/g, (_match, _separator, letter: string) => letter.toUpperCase())}`,
          summary,
          description:
            "Signed with Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) " +
            "using the endpoint's secret. Answer 2xx within the timeout; anything else is retried.",
          tags: ["webhooks"],
          security: [],
          requestBody: {
            required: true,
            content: { "application/json": { schema: { $ref: `${REF_PREFIX}${schema}` } } },
          },
          responses: { "200": { description: "Received; any 2xx will do" } },
        },
      },
    ]),
  );
}

/** `@fastify/swagger` prints a wildcard route as `/x/{*}`; name its parameter `key` (it may hold `/`). */
function nameWildcards(document: Document): void {
  const paths = document.paths ?? {};
  for (const [path, item] of Object.entries(paths)) {
    if (!path.endsWith("/{*}")) continue;
    for (const operation of Object.values(item)) {
      for (const parameter of (operation.parameters ?? []) as JsonObject[]) {
        if (parameter.in === "path" && parameter.name === "*") {
          parameter.name = "key";
          parameter.description = "The object key; it may contain `/`";
          // Fastify's `*`: tools that map the document back onto routes (the e2e fuzzer) look for it.
          parameter["x-wildcard"] = true;
        }
      }
    }
    delete paths[path];
    paths[path.replace(/\{\*\}$/, "{key}")] = item;
  }
}

/**
 * `@fastify/swagger`'s whole-document transform: the type provider's components, then
 * genq's finishing: input/output twins merged, webhooks, examples on media, servers,
 * unused components dropped.
 */
export function finishDocument(input: TransformObjectInput): ReturnType<typeof jsonSchemaTransformObject> {
  // Schemas only the webhooks use must be in the registry when the components are printed.
  void WebhookEvent;
  const document = jsonSchemaTransformObject(input) as Document;
  mergeInputTwins(document);
  nameWildcards(document);
  document.webhooks = webhooks();
  // Relative: the API that serves this document at /docs/json.
  document.servers = [{ url: "/", description: "The genq API serving this document" }];
  resolveDocumentedAs(document);
  dropUnusedSchemas(document);
  nameRequestOnlyTwins(document);
  addMediaExamples(document);
  return document as ReturnType<typeof jsonSchemaTransformObject>;
}
