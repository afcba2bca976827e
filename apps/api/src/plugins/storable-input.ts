import { findUnstorableJson, GenqError } from "@genq/core";
import type { FastifyInstance, FastifyRequest } from "fastify";

/**
 * Refuses, with 400 `invalid_request`, a request whose path parameters, query or JSON body
 * hold what Postgres cannot store or compare (a NUL character: text and jsonb reject it),
 * before any route reads it. Every route is covered, the ones added later too: such input
 * was a 500 wherever a route passed it to Postgres unchecked. Nesting depth is left to the
 * routes' own checks (their limits count from the field, e.g. `metadata`, and name it).
 */
/** How deep the scan goes: past every route's own depth limit, short of quadratic work on hostile nesting. */
const SCAN_DEPTH = 64;

export function refuseUnstorableInput(app: FastifyInstance): void {
  app.addHook("preValidation", async (request: FastifyRequest) => {
    const schema = request.routeOptions.schema;
    for (const [location, value] of [
      ["params", request.params],
      ["querystring", request.query],
      ["body", request.body],
    ] as const) {
      // Raw bodies (JSONL streams, uploads) are checked by the routes that read them.
      if (value === undefined || value === null || Buffer.isBuffer(value) || isStream(value)) continue;
      // A route with a schema reads only what it declares: a probe's ignored query is not refused.
      if (schema !== undefined && location === "querystring" && schema.querystring === undefined) continue;
      const problem = findUnstorableJson(value, SCAN_DEPTH);
      // Deeper than the scan: the route's own depth check answers it.
      if (problem === undefined || problem.message.startsWith("nests deeper")) continue;
      const field = problem.path.join(".");
      throw new GenqError(
        "invalid_request",
        `${location}${field === "" ? "" : `.${field}`}: ${problem.message}`,
        {
          details: { location, field },
        },
      );
    }
  });
}

function isStream(value: unknown): boolean {
  return (
    typeof value === "object" && value !== null && typeof (value as { pipe?: unknown }).pipe === "function"
  );
}
