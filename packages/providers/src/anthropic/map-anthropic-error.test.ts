import Anthropic, { type APIError } from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { ProviderError } from "../provider-error.ts";
import { mapAnthropicError } from "./map-anthropic-error.ts";

function apiError(
  status: number | undefined,
  error: Record<string, unknown>,
  headers: Record<string, string> = {},
): APIError {
  const body = { type: "error", error: { message: "boom", ...error }, request_id: "req_011CFromBody" };
  // The SDK builds a status error only when there is a status; a stream's error event has none.
  if (status === undefined) {
    return new Anthropic.APIError(undefined, body, undefined, new Headers(headers));
  }
  return Anthropic.APIError.generate(status, body, undefined, new Headers(headers));
}

describe("mapAnthropicError", () => {
  it.each([
    [400, { type: "invalid_request_error", message: "messages: Field required" }, "invalid_request", false],
    [
      400,
      { type: "invalid_request_error", message: "Your credit balance is too low" },
      "credit_exhausted",
      false,
    ],
    [
      400,
      {
        type: "invalid_request_error",
        message: "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000",
      },
      "context_length_exceeded",
      false,
    ],
    [402, { type: "billing_error" }, "credit_exhausted", false],
    [400, { type: "billing_error" }, "credit_exhausted", false],
    [
      429,
      { type: "rate_limit_error", details: { error_code: "enforced_spend_limit_reached" } },
      "credit_exhausted",
      false,
    ],
    [429, { type: "rate_limit_error", details: { error_code: "ramp_limit_exceeded" } }, "rate_limited", true],
    [401, { type: "authentication_error" }, "auth_failed", false],
    [403, { type: "permission_error" }, "invalid_request", false],
    [404, { type: "not_found_error" }, "invalid_request", false],
    [408, {}, "timeout", true],
    [409, {}, "provider_unavailable", true],
    [413, { type: "request_too_large" }, "invalid_request", false],
    [422, {}, "invalid_request", false],
    [502, {}, "provider_unavailable", true],
    [504, { type: "timeout_error" }, "timeout", true],
    [529, { type: "overloaded_error", message: "Overloaded" }, "provider_unavailable", true],
  ] as const)("maps %i %o to %s (retryable %s)", (status, body, code, retryable) => {
    const mapped = mapAnthropicError(apiError(status, body), "anthropic");
    expect(mapped).toMatchObject({ code, retryable, status, provider: "anthropic" });
  });

  it.each([
    ["rate_limit_error", "rate_limited"],
    ["overloaded_error", "provider_unavailable"],
    ["api_error", "provider_unavailable"],
    ["invalid_request_error", "invalid_request"],
    ["something_new", "provider_unavailable"],
  ] as const)("maps a stream error event of type %s to %s", (type, code) => {
    const mapped = mapAnthropicError(apiError(undefined, { type }), "anthropic");
    expect(mapped).toMatchObject({ code, status: undefined });
  });

  it("reads the request id from the header, else from the body, and an HTTP-date retry-after", () => {
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    const withHeader = mapAnthropicError(
      apiError(529, { type: "overloaded_error" }, { "retry-after": inTenSeconds, "request-id": "req_1" }),
      "x",
    );
    expect(withHeader.requestId).toBe("req_1");
    expect(withHeader.retryAfterMs).toBeGreaterThan(8_000);
    expect(withHeader.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(mapAnthropicError(apiError(500, {}), "x").requestId).toBe("req_011CFromBody");
  });

  it("maps the SDK's connection, timeout and abort errors", () => {
    expect(mapAnthropicError(new Anthropic.APIConnectionError({ message: "down" }), "anthropic").code).toBe(
      "provider_unavailable",
    );
    expect(mapAnthropicError(new Anthropic.APIConnectionTimeoutError(), "anthropic").code).toBe("timeout");
    expect(mapAnthropicError(new Anthropic.APIUserAbortError(), "anthropic").code).toBe("canceled");
    expect(mapAnthropicError(new DOMException("aborted", "AbortError"), "anthropic").code).toBe("canceled");
  });

  it("treats anything else as a retryable provider_unavailable", () => {
    expect(mapAnthropicError(new SyntaxError("Unexpected token"), "anthropic")).toMatchObject({
      code: "provider_unavailable",
      retryable: true,
    });
  });

  it("passes a ProviderError through unchanged", () => {
    const original = new ProviderError("invalid_request", "no model", { provider: "anthropic" });
    expect(mapAnthropicError(original, "anthropic")).toBe(original);
  });
});
