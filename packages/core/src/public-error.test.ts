import { describe, expect, it } from "vitest";
import { ERROR_CODES, GenqError } from "./errors.ts";
import { PUBLIC_ERROR_MESSAGES, publicErrorMessage, toPublicFailure } from "./public-error.ts";

describe("public job failures", () => {
  it("replaces the error's text by its code's generic message and keeps the code", () => {
    const error = new GenqError(
      "provider_unavailable",
      "connect ECONNREFUSED http://10.1.2.3:8443 sk-live-abc",
      {
        details: { provider: "openai", status: 502 },
      },
    );
    expect(toPublicFailure(error)).toEqual({
      code: "provider_unavailable",
      message: PUBLIC_ERROR_MESSAGES.provider_unavailable,
    });
  });

  it("adds the provider's request id when it looks like one, and only then", () => {
    const withId = (requestId: unknown) =>
      toPublicFailure({ code: "invalid_request", details: { provider: "openai", requestId } }).message;
    expect(withId("req_0123abcd")).toBe(
      `${PUBLIC_ERROR_MESSAGES.invalid_request} Provider request id: req_0123abcd.`,
    );
    expect(withId("see http://10.1.2.3:8443/")).toBe(PUBLIC_ERROR_MESSAGES.invalid_request);
    expect(withId(42)).toBe(PUBLIC_ERROR_MESSAGES.invalid_request);
  });

  it("keeps genq's own message for a request it refused before any provider answered", () => {
    const unknown = new GenqError(
      "invalid_request",
      'provider "nowhere" is not configured; configured: mock',
    );
    expect(toPublicFailure(unknown)).toEqual({ code: "invalid_request", message: unknown.message });
    class ProviderError extends GenqError {
      override readonly name = "ProviderError";
    }
    const fromProvider = new ProviderError(
      "invalid_request",
      "openai: 400 bad thing at http://10.1.2.3:8443",
      {
        details: { provider: "openai" },
      },
    );
    expect(toPublicFailure(fromProvider).message).toBe(PUBLIC_ERROR_MESSAGES.invalid_request);
    // A failed route carries the provider's text as its own message.
    expect(
      toPublicFailure({
        name: "RouteFailedError",
        code: "invalid_request",
        message: "openai: 400 at 10.1.2.3",
      }),
    ).toEqual({ code: "invalid_request", message: PUBLIC_ERROR_MESSAGES.invalid_request });
  });

  it("has a message for every code, and answers the internal error's for an unknown code", () => {
    for (const code of ERROR_CODES) expect(publicErrorMessage(code)).toMatch(/^[A-Z].*\.$/);
    expect(toPublicFailure({ code: "weird" })).toEqual({
      code: "internal_error",
      message: PUBLIC_ERROR_MESSAGES.internal_error,
    });
  });
});
