import { ApiError } from "@google/genai";
import { describe, expect, it } from "vitest";
import { ProviderError } from "../provider-error.ts";
import { mapGeminiError, parseGoogleDuration, parseGoogleErrorBody } from "./map-gemini-error.ts";
import { geminiErrorBodies } from "./testing/fake-gemini-server.ts";

/** An ApiError the way the SDK builds one for an HTTP error: the JSON body as the message. */
function apiError(status: number, error: Record<string, unknown>) {
  return new ApiError({ message: JSON.stringify({ error: { code: status, ...error } }), status });
}

describe("mapGeminiError", () => {
  it.each([
    [
      400,
      { status: "INVALID_ARGUMENT", message: "Request contains an invalid argument." },
      "invalid_request",
      false,
    ],
    [
      400,
      { status: "FAILED_PRECONDITION", message: "User location is not supported for the API use." },
      "invalid_request",
      false,
    ],
    [
      400,
      {
        status: "FAILED_PRECONDITION",
        message: "User location is not supported for the API use without a billing account linked.",
      },
      "credit_exhausted",
      false,
    ],
    [
      400,
      {
        status: "INVALID_ARGUMENT",
        message: "API key expired. Please renew the API key.",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" }],
      },
      "auth_failed",
      false,
    ],
    [
      403,
      {
        status: "PERMISSION_DENIED",
        message: "Your API key was reported as leaked. Please use another API key.",
      },
      "auth_failed",
      false,
    ],
    [
      403,
      {
        status: "PERMISSION_DENIED",
        message: "Generative Language API has not been used in project 123 before or it is disabled.",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "SERVICE_DISABLED" }],
      },
      "auth_failed",
      false,
    ],
    [
      403,
      { status: "PERMISSION_DENIED", message: "The caller does not have permission" },
      "invalid_request",
      false,
    ],
    [
      403,
      {
        status: "PERMISSION_DENIED",
        message: "You do not have permission to access the File abc123 or it may not exist.",
      },
      "invalid_request",
      false,
    ],
    [
      403,
      {
        status: "PERMISSION_DENIED",
        message: "Method doesn't allow unregistered callers (callers without established identity).",
      },
      "auth_failed",
      false,
    ],
    [
      401,
      { status: "UNAUTHENTICATED", message: "Request had invalid authentication credentials." },
      "auth_failed",
      false,
    ],
    [404, { status: "NOT_FOUND", message: "models/x is not found" }, "invalid_request", false],
    [408, { status: "DEADLINE_EXCEEDED", message: "Request timeout" }, "timeout", true],
    [
      429,
      { status: "RESOURCE_EXHAUSTED", message: "Resource has been exhausted (e.g. check quota)." },
      "rate_limited",
      true,
    ],
    [500, { status: "INTERNAL", message: "An internal error has occurred." }, "provider_unavailable", true],
    [502, { status: "UNAVAILABLE", message: "Bad gateway" }, "provider_unavailable", true],
    [
      503,
      { status: "UNAVAILABLE", message: "The model is overloaded. Please try again later." },
      "provider_unavailable",
      true,
    ],
    [
      504,
      { status: "DEADLINE_EXCEEDED", message: "Deadline expired before operation could complete." },
      "timeout",
      true,
    ],
  ] as const)("maps %i %o to %s (retryable %s)", (status, body, code, retryable) => {
    const mapped = mapGeminiError(apiError(status, body), "gemini");
    expect(mapped).toMatchObject({ code, retryable, status, provider: "gemini" });
  });

  it("keeps Google's status name and message in the error message", () => {
    const mapped = mapGeminiError(apiError(503, geminiErrorBodies.unavailable.error), "gemini");
    expect(mapped.message).toBe("gemini: UNAVAILABLE: The model is overloaded. Please try again later.");
  });

  it("reads the retry delay from RetryInfo, before the message's sentence", () => {
    const mapped = mapGeminiError(apiError(429, geminiErrorBodies.rateLimit.error), "gemini");
    expect(mapped).toMatchObject({ code: "rate_limited", retryAfterMs: 7000 });
  });

  it("falls back to the message's 'Please retry in' sentence", () => {
    const mapped = mapGeminiError(
      apiError(429, {
        status: "RESOURCE_EXHAUSTED",
        message:
          "You exceeded your current quota, please check your plan and billing details.\nPlease retry in 26.2s.",
      }),
      "gemini",
    );
    expect(mapped).toMatchObject({ code: "rate_limited", retryable: true, retryAfterMs: 26_200 });
  });

  it("does not take 'check your plan and billing details' alone for exhausted credit", () => {
    // Google sends this sentence with every 429, per-minute limits included.
    const mapped = mapGeminiError(
      apiError(429, {
        status: "RESOURCE_EXHAUSTED",
        message: "You exceeded your current quota, please check your plan and billing details.",
      }),
      "gemini",
    );
    expect(mapped).toMatchObject({ code: "rate_limited", retryable: true, retryAfterMs: undefined });
  });

  it("maps a free-tier limit of 0 (the model needs billing) to credit_exhausted", () => {
    const mapped = mapGeminiError(
      apiError(429, {
        status: "RESOURCE_EXHAUSTED",
        message:
          "You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro\nPlease retry in 20.04s.",
      }),
      "gemini",
    );
    expect(mapped).toMatchObject({ code: "credit_exhausted", retryable: false, retryAfterMs: undefined });
  });

  it.each([
    ["a daily quota", geminiErrorBodies.dailyQuota.error],
    ["depleted prepaid credits", geminiErrorBodies.creditsDepleted.error],
  ])("maps 429 for %s to credit_exhausted", (_label, body) => {
    expect(mapGeminiError(apiError(429, body), "gemini")).toMatchObject({
      code: "credit_exhausted",
      retryable: false,
    });
  });

  it("reads an error the SDK raised from a stream chunk", () => {
    const chunk = JSON.stringify(geminiErrorBodies.rateLimit);
    const error = new ApiError({ message: `got status: RESOURCE_EXHAUSTED. ${chunk}`, status: 429 });
    expect(mapGeminiError(error, "gemini")).toMatchObject({ code: "rate_limited", retryAfterMs: 7000 });
  });

  it("maps an error body that is not JSON by its status", () => {
    const error = new ApiError({
      message: JSON.stringify({
        error: { message: "<html>Bad Gateway</html>", code: 502, status: "Bad Gateway" },
      }),
      status: 502,
    });
    expect(mapGeminiError(error, "gemini")).toMatchObject({ code: "provider_unavailable", status: 502 });
  });

  it("recognizes an ApiError from another copy of the SDK by name and status", () => {
    const foreign = Object.assign(
      new Error(JSON.stringify({ error: { code: 429, status: "RESOURCE_EXHAUSTED" } })),
      {
        name: "ApiError",
        status: 429,
      },
    );
    expect(mapGeminiError(foreign, "gemini")).toMatchObject({ code: "rate_limited", status: 429 });
  });

  it("maps fetch failures, aborts, SDK validation and malformed responses", () => {
    const refused = new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
    expect(mapGeminiError(refused, "gemini")).toMatchObject({
      code: "provider_unavailable",
      message: "gemini: could not connect: connect ECONNREFUSED 127.0.0.1:1",
    });
    expect(mapGeminiError(new DOMException("This operation was aborted", "AbortError"), "gemini").code).toBe(
      "canceled",
    );
    const validation = new Error(
      "audioTimestamp parameter is only supported in Gemini Enterprise Agent Platform mode, not in Gemini Developer API mode.",
    );
    expect(mapGeminiError(validation, "gemini")).toMatchObject({ code: "invalid_request", retryable: false });
    expect(mapGeminiError(new Error("Incomplete JSON segment at the end"), "gemini")).toMatchObject({
      code: "provider_unavailable",
      retryable: true,
    });
  });

  it("passes a ProviderError through unchanged", () => {
    const original = new ProviderError("invalid_request", "no model", { provider: "gemini" });
    expect(mapGeminiError(original, "gemini")).toBe(original);
  });
});

describe("parseGoogleErrorBody", () => {
  it("reads the body from an HTTP error message and from a stream chunk message", () => {
    const text = JSON.stringify(geminiErrorBodies.unavailable);
    expect(parseGoogleErrorBody(text)).toEqual(geminiErrorBodies.unavailable.error);
    expect(parseGoogleErrorBody(`got status: UNAVAILABLE. ${text}`)).toEqual(
      geminiErrorBodies.unavailable.error,
    );
    expect(parseGoogleErrorBody(`[${text}]`)).toEqual(geminiErrorBodies.unavailable.error);
  });

  it("is undefined for anything else", () => {
    expect(parseGoogleErrorBody("fetch failed")).toBeUndefined();
    expect(parseGoogleErrorBody("{not json")).toBeUndefined();
    expect(parseGoogleErrorBody('{"message":"no error key"}')).toBeUndefined();
  });
});

describe("parseGoogleDuration", () => {
  it.each([
    ["7s", 7000],
    ["0.250s", 250],
    ["26.2s", 26_200],
    ["21599.960323804s", 21_599_961],
  ])("reads %s as %i ms", (value, expected) => {
    expect(parseGoogleDuration(value)).toBe(expected);
  });

  it.each([["7"], ["7ms"], ["-1s"], [""], [7]])("rejects %o", (value) => {
    expect(parseGoogleDuration(value)).toBeUndefined();
  });
});
