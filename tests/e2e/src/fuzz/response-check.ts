import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import type { FuzzRequest } from "./request-arbitrary.ts";
import type { FuzzRoute } from "./route-catalog.ts";

/** How long one injected request may take before the fuzzer calls it hung. */
const REQUEST_TIMEOUT_MS = 15_000;

/** Totals across the whole run, printed at the end. */
export const fuzzStats = {
  requests: 0,
  byStatus: new Map<number, number>(),
  byCategory: new Map<string, number>(),
  /** 503s accepted because the route's dependency is off by design, by route. */
  allowed503: new Map<string, number>(),
};

/** A short, printable form of a request for failure messages (long values cut). */
export function describeRequest(request: FuzzRequest): string {
  const cut = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text);
  const payload =
    request.payload === undefined
      ? ""
      : Buffer.isBuffer(request.payload)
        ? ` payload=<${request.payload.length} bytes: ${cut(request.payload.toString("hex"))}>`
        : ` payload=${cut(JSON.stringify(request.payload))}`;
  const headers = Object.fromEntries(
    Object.entries(request.headers).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.map(cut) : cut(value),
    ]),
  );
  return `[${request.category}] ${request.method} ${cut(request.url)} headers=${JSON.stringify(headers)}${payload}`;
}

/** Sends `request` through `app.inject`, failing if it has no answer in time. */
export async function send(app: FastifyInstance, request: FuzzRequest): Promise<LightMyRequestResponse> {
  fuzzStats.requests += 1;
  fuzzStats.byCategory.set(request.category, (fuzzStats.byCategory.get(request.category) ?? 0) + 1);
  let timer: NodeJS.Timeout | undefined;
  try {
    const response = await Promise.race([
      app.inject({
        method: request.method as "GET",
        url: request.url,
        headers: request.headers,
        ...(request.payload === undefined ? {} : { payload: request.payload }),
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms: ${describeRequest(request)}`)),
          REQUEST_TIMEOUT_MS,
        );
      }),
    ]);
    fuzzStats.byStatus.set(response.statusCode, (fuzzStats.byStatus.get(response.statusCode) ?? 0) + 1);
    return response;
  } finally {
    clearTimeout(timer);
  }
}

/** What the fuzzer must never see in a response. */
export interface Secrets {
  values: string[];
}

/**
 * The properties every response must have: no 5xx; a 4xx is JSON with a string
 * `error.code` and `error.message`; no secret echoed in the body or headers.
 * Returns the broken properties (empty when all hold).
 */
export function problemsOf(
  route: FuzzRoute,
  request: FuzzRequest,
  response: LightMyRequestResponse,
  secrets: Secrets,
): string[] {
  const problems: string[] = [];
  const status = response.statusCode;
  if (status >= 500) problems.push(`status ${status}`);
  if (status >= 400 && request.method !== "HEAD") {
    const contentType = String(response.headers["content-type"] ?? "");
    if (!contentType.startsWith("application/json")) {
      problems.push(`a ${status} with content-type ${JSON.stringify(contentType)}`);
    } else {
      try {
        const body = response.json() as { error?: { code?: unknown; message?: unknown } };
        if (typeof body.error?.code !== "string") problems.push(`a ${status} without error.code`);
        if (typeof body.error?.message !== "string" || body.error.message.length === 0)
          problems.push(`a ${status} without error.message`);
      } catch {
        problems.push(`a ${status} whose body is not JSON`);
      }
    }
  }
  const headerText = JSON.stringify(response.headers);
  for (const secret of secrets.values) {
    if (response.body.includes(secret) || headerText.includes(secret)) problems.push("a secret echoed back");
  }
  void route;
  return problems;
}

/** The failure message for a broken property: request, response and the broken properties. */
export function failureMessage(
  route: FuzzRoute,
  request: FuzzRequest,
  response: LightMyRequestResponse,
  problems: string[],
): string {
  return [
    `${route.method} ${route.path}: ${problems.join("; ")}`,
    `request: ${describeRequest(request)}`,
    `response: ${response.statusCode} ${JSON.stringify(response.headers["content-type"] ?? "")} ${response.body.slice(0, 500)}`,
  ].join("\n");
}
