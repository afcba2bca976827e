import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { buildOpenApiDocument, type OpenApiDocument } from "./openapi-document.ts";

const CONTRACT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "contract", "openapi.json");
const METHODS = ["get", "put", "post", "delete", "patch"];

type Operation = {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, { description: string; headers?: Record<string, unknown> }>;
};

function operations(document: OpenApiDocument): Array<[string, Operation]> {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]): [string, Operation] => [
        `${method.toUpperCase()} ${path}`,
        operation as Operation,
      ]),
  );
}

describe("the API contract", () => {
  let document: OpenApiDocument;
  beforeAll(async () => {
    document = await buildOpenApiDocument();
  }, 60_000);

  it("is the committed contract/openapi.json (run `pnpm contract:write` after changing a route)", async () => {
    expect(document).toEqual(JSON.parse(await readFile(CONTRACT, "utf8")));
  });

  it("names every operation with a unique operationId", () => {
    const ids = operations(document).map(([name, operation]) => operation.operationId ?? `(none: ${name})`);
    expect(ids.filter((id) => id.startsWith("(none"))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("describes every response (no 'Default Response')", () => {
    const vague = operations(document).flatMap(([name, operation]) =>
      Object.entries(operation.responses)
        .filter(([, response]) => response.description === "Default Response")
        .map(([status]) => `${name} ${status}`),
    );
    expect(vague).toEqual([]);
  });

  it("asks no credentials of the health probes", () => {
    for (const path of ["/health/live", "/health/ready"]) {
      expect((document.paths[path]?.get as Operation | undefined)?.security).toEqual([]);
    }
  });

  it("documents the headers a submission answers with: Preference-Applied on 200/202, Retry-After on 429/503", () => {
    const responses = (document.paths["/v1/jobs"]?.post as Operation | undefined)?.responses ?? {};
    const headersOf = (status: string) => Object.keys(responses[status]?.headers ?? {});
    expect(headersOf("200")).toEqual(["preference-applied"]);
    expect(headersOf("202")).toEqual(["preference-applied"]);
    expect(headersOf("429")).toEqual(["retry-after"]);
    expect(headersOf("503")).toEqual(["retry-after"]);
  });
});
