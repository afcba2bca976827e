import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { ProviderError } from "../provider-error.ts";
import { mapOpenAIError } from "./map-openai-error.ts";

function apiError(status: number, error: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return OpenAI.APIError.generate(
    status,
    { error: { message: "boom", ...error } },
    undefined,
    new Headers(headers),
  );
}

describe("mapOpenAIError", () => {
  it.each([
    [401, { code: "invalid_api_key" }, "auth_failed", false],
    [401, {}, "auth_failed", false],
    [
      401,
      {
        message:
          "You have insufficient permissions for this operation. Missing scopes: api.model.images.request.",
      },
      "invalid_request",
      false,
    ],
    [403, {}, "invalid_request", false],
    [
      403,
      { code: "unsupported_country_region_territory", type: "request_forbidden" },
      "invalid_request",
      false,
    ],
    [404, { code: "model_not_found" }, "invalid_request", false],
    [404, {}, "invalid_request", false],
    [422, {}, "invalid_request", false],
    [408, {}, "timeout", true],
    [409, {}, "provider_unavailable", true],
    [502, {}, "provider_unavailable", true],
    [529, {}, "provider_unavailable", true],
    [400, { code: "content_filter" }, "content_filtered", false],
    [400, { code: "billing_hard_limit_reached" }, "credit_exhausted", false],
    [429, { type: "insufficient_quota" }, "credit_exhausted", false],
  ] as const)("maps %i %o to %s (retryable %s)", (status, body, code, retryable) => {
    const mapped = mapOpenAIError(apiError(status, body), "openai");
    expect(mapped).toMatchObject({ code, retryable, status, provider: "openai" });
  });

  it("reads an HTTP-date retry-after and the request id", () => {
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    const mapped = mapOpenAIError(
      apiError(503, {}, { "retry-after": inTenSeconds, "x-request-id": "req_1" }),
      "x",
    );
    expect(mapped.requestId).toBe("req_1");
    expect(mapped.retryAfterMs).toBeGreaterThan(8_000);
    expect(mapped.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it("maps the SDK's connection, timeout and abort errors", () => {
    expect(mapOpenAIError(new OpenAI.APIConnectionError({ message: "down" }), "openai").code).toBe(
      "provider_unavailable",
    );
    expect(mapOpenAIError(new OpenAI.APIConnectionTimeoutError(), "openai").code).toBe("timeout");
    expect(mapOpenAIError(new OpenAI.APIUserAbortError(), "openai").code).toBe("canceled");
  });

  it("passes a ProviderError through unchanged", () => {
    const original = new ProviderError("invalid_request", "no model", { provider: "openai" });
    expect(mapOpenAIError(original, "openai")).toBe(original);
  });
});
