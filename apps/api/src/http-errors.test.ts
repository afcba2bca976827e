import { ERROR_CODES } from "@genq/core";
import { describe, expect, it } from "vitest";
import { httpStatusFor } from "./http-errors.ts";

describe("httpStatusFor", () => {
  it("gives every error code a status, and client mistakes a 4xx", () => {
    for (const code of ERROR_CODES) expect(httpStatusFor(code)).toBeGreaterThanOrEqual(400);
    expect(httpStatusFor("invalid_request")).toBe(400);
    expect(httpStatusFor("unauthorized")).toBe(401);
    expect(httpStatusFor("not_found")).toBe(404);
    expect(httpStatusFor("idempotency_conflict")).toBe(409);
    expect(httpStatusFor("payload_too_large")).toBe(413);
    expect(httpStatusFor("quota_exceeded")).toBe(429);
    expect(httpStatusFor("service_unavailable")).toBe(503);
  });
});
