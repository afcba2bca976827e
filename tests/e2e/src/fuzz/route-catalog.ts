import type { FastifyInstance } from "fastify";

/** A JSON Schema fragment as `@fastify/swagger` prints it. */
export type JsonSchema = Record<string, unknown>;

/** How a route authenticates its caller. */
export type RouteAuth = "api-key" | "operator" | "none";

/**
 * What a route answers on success, which decides what the fuzzer may send it:
 * `sse` keeps a stream open (only inputs that must fail before streaming),
 * `bull-board` is a third-party UI and API, `static` serves files or HTML.
 */
export type RouteKind = "json" | "sse" | "multipart" | "bull-board" | "static";

/** One parameter of an operation (path, query or header). */
export interface RouteParameter {
  in: "path" | "query" | "header";
  name: string;
  required: boolean;
  schema: JsonSchema;
}

/** One method of one route, as the fuzzer sees it. */
export interface FuzzRoute {
  method: string;
  /** Fastify's pattern: `/v1/jobs/:id`, `/v1/assets/*`. */
  path: string;
  auth: RouteAuth;
  kind: RouteKind;
  /** True when the route is in the OpenAPI document. */
  documented: boolean;
  parameters: RouteParameter[];
  /** The JSON request body's schema, `$ref`s resolved lazily by the generator. */
  body?: JsonSchema;
}

/** The OpenAPI document's parts the catalog reads. */
interface OpenApiDocument {
  paths?: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

interface OpenApiOperation {
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, { content?: Record<string, unknown> }>;
}

const HTTP_METHODS = new Set(["get", "post", "put", "patch", "delete", "head", "options"]);

/** `/v1/jobs/{id}` → `/v1/jobs/:id`; `/v1/assets/{*}` → `/v1/assets/*`. */
function toFastifyPath(openApiPath: string, operations: Record<string, OpenApiOperation>): string {
  // A wildcard parameter (`x-wildcard`, e.g. the asset key) is Fastify's `*`.
  const wildcards = new Set(
    Object.values(operations).flatMap((operation) =>
      (operation.parameters ?? [])
        .filter((parameter) => (parameter as { "x-wildcard"?: boolean })["x-wildcard"] === true)
        .map((parameter) => parameter.name),
    ),
  );
  return openApiPath
    .replace(/\{([^}]+)\}/g, (match, name: string) => (name === "*" || wildcards.has(name) ? "*" : match))
    .replace(/\{([^}]+)\}/g, ":$1");
}

function authOf(path: string, operation: OpenApiOperation | undefined): RouteAuth {
  if (operation?.security !== undefined) {
    if (operation.security.length === 0) return "none";
    if (operation.security.some((requirement) => "operator" in requirement)) return "operator";
    return "api-key";
  }
  if (path.startsWith("/v1/admin/") || path.startsWith("/admin/") || path === "/metrics") return "operator";
  if (path.startsWith("/v1/assets/")) return "none";
  if (path.startsWith("/v1/")) return "api-key";
  return "none";
}

function kindOf(path: string, operation: OpenApiOperation | undefined): RouteKind {
  if (path.startsWith("/admin/queues")) return "bull-board";
  const produces = Object.keys(operation?.responses?.["200"]?.content ?? {});
  if (path.endsWith("/events") || produces.includes("text/event-stream")) return "sse";
  if (operation?.requestBody?.content?.["multipart/form-data"] !== undefined) return "multipart";
  if (path.startsWith("/v1/uploads") && operation === undefined) return "multipart";
  if (path.startsWith("/docs") || path.startsWith("/v1/assets/") || path === "/metrics") return "static";
  return "json";
}

/**
 * Parses `app.printRoutes({ commonPrefix: false })`: a tree whose lines are
 * `│   ├── <segment> (GET, HEAD)`, each segment appended to its parent's path.
 */
export function parsePrintedRoutes(printed: string): Array<{ path: string; methods: string[] }> {
  const routes: Array<{ path: string; methods: string[] }> = [];
  const stack: string[] = [];
  for (const line of printed.split("\n")) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (match === null) continue;
    const depth = (match[1] ?? "").length / 4;
    const segment = match[2] ?? "";
    stack.length = depth;
    const path = `${stack.join("")}${segment}`;
    stack.push(segment);
    if (match[3] !== undefined) routes.push({ path, methods: match[3].split(", ") });
  }
  return routes;
}

/**
 * Every route the app serves, read at run time: the OpenAPI document (with
 * schemas) and Fastify's own route tree (for undocumented routes such as Bull
 * Board, /metrics and the docs' assets). Routes added later by anyone are
 * covered without a change here.
 */
export function catalogRoutes(app: FastifyInstance): {
  routes: FuzzRoute[];
  schemas: Record<string, JsonSchema>;
  unresolved: string[];
} {
  const document = (app as unknown as { swagger(): OpenApiDocument }).swagger();
  const routes = new Map<string, FuzzRoute>();
  for (const [openApiPath, operations] of Object.entries(document.paths ?? {})) {
    const path = toFastifyPath(openApiPath, operations);
    for (const [method, operation] of Object.entries(operations)) {
      if (!HTTP_METHODS.has(method)) continue;
      const parameters: RouteParameter[] = (operation.parameters ?? [])
        .filter((parameter) => ["path", "query", "header"].includes(parameter.in))
        .map((parameter) => ({
          in: parameter.in as RouteParameter["in"],
          name: parameter.name,
          required: parameter.required ?? false,
          schema: parameter.schema ?? {},
        }));
      const body = operation.requestBody?.content?.["application/json"]?.schema;
      routes.set(`${method.toUpperCase()} ${path}`, {
        method: method.toUpperCase(),
        path,
        auth: authOf(path, operation),
        kind: kindOf(path, operation),
        documented: true,
        parameters,
        ...(body === undefined ? {} : { body }),
      });
    }
  }
  const unresolved: string[] = [];
  const printed = parsePrintedRoutes(app.printRoutes({ commonPrefix: false }));
  /**
   * The tree prints a wildcard without the static part its siblings share
   * (`/docs/static/*` shows as `*` under `/docs/`); find the real pattern.
   */
  const resolveWildcard = (method: string, path: string): string | undefined => {
    const parent = path.slice(0, -1);
    const candidates = new Set([path]);
    for (const other of printed) {
      if (!other.path.startsWith(parent) || other.path === path) continue;
      const rest = other.path.slice(parent.length);
      for (let end = rest.indexOf("/"); end >= 0; end = rest.indexOf("/", end + 1))
        candidates.add(`${parent}${rest.slice(0, end + 1)}*`);
    }
    return [...candidates].find((candidate) => app.hasRoute({ method: method as "GET", url: candidate }));
  };
  for (const entry of printed) {
    const { methods } = entry;
    for (const method of methods) {
      // HEAD routes Fastify adds for each GET are fuzzed as GET's twin below.
      if (method === "HEAD" && methods.includes("GET")) continue;
      let path = entry.path;
      if (!app.hasRoute({ method: method as "GET", url: path }) && path.endsWith("*")) {
        // The asset wildcard prints as a bare `*` at the root; the OpenAPI document has it.
        if (path === "*" && [...routes.values()].some((route) => route.path.endsWith("/*"))) continue;
        path = resolveWildcard(method, path) ?? path;
      }
      const key = `${method} ${path}`;
      if (routes.has(key)) continue;
      // A wildcard whose static part the tree hides is still fuzzed: its URLs are generated below its parent.
      if (!app.hasRoute({ method: method as "GET", url: path }) && !path.endsWith("*")) {
        unresolved.push(key);
        continue;
      }
      const parameters: RouteParameter[] = [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => ({
        in: "path",
        name: match[1] ?? "",
        required: true,
        schema: { type: "string" },
      }));
      routes.set(key, {
        method,
        path,
        auth: authOf(path, undefined),
        kind: kindOf(path, undefined),
        documented: false,
        parameters,
      });
    }
  }
  return {
    routes: [...routes.values()].sort((a, b) =>
      `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`),
    ),
    schemas: document.components?.schemas ?? {},
    unresolved,
  };
}
