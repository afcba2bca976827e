import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MAX_OUTPUT_TOKENS } from "../allowed-provider-options.ts";
import type { Provider, TextGenerationRequest, TextStreamPart } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import generateContentFixture from "./__fixtures__/generate-content.json" with { type: "json" };
import cachedThinkingFixture from "./__fixtures__/generate-content-cached-thinking.json" with {
  type: "json",
};
import streamChunksFixture from "./__fixtures__/stream-generate-content.json" with { type: "json" };
import { createGeminiProvider } from "./gemini-provider.ts";
import {
  type FakeGeminiServer,
  fakeGeminiImagePng,
  geminiErrorBodies,
  geminiPromptBlockedResponse,
  startFakeGeminiServer,
} from "./testing/fake-gemini-server.ts";

const API_KEY = "AIzaSyTest-gemini-key";

let server: FakeGeminiServer;
let provider: Provider;

beforeAll(async () => {
  server = await startFakeGeminiServer({ apiKey: API_KEY });
  provider = createGeminiProvider({ apiKey: API_KEY, baseURL: server.url, defaultModel: "gemini-2.5-flash" });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
});

function request(overrides: Partial<TextGenerationRequest> = {}): TextGenerationRequest {
  return {
    model: "gemini-2.5-flash",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say hello" },
    ],
    ...overrides,
  };
}

async function collect(stream: AsyncIterable<TextStreamPart>): Promise<TextStreamPart[]> {
  const parts: TextStreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

/** A base URL where nothing listens: a port that was just free. */
async function refusedURL(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** A generateContent answer from the fixture with one candidate changed. */
function responseWith(candidate: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    body: {
      ...generateContentFixture,
      candidates: [{ ...generateContentFixture.candidates[0], ...candidate }],
      ...extra,
    },
  };
}

describe("generateText", () => {
  it("returns the text, usage, finish reason, model and responseId", async () => {
    const result = await provider.generateText(request());
    expect(result.text).toBe("This is a fake reply to: Say hello");
    expect(result.finishReason).toBe("stop");
    expect(result.model).toBe("gemini-2.5-flash");
    expect(result.usage).toEqual({ inputTokens: 6, outputTokens: 9 });
    expect(result.providerRequestId).toMatch(/^[\w-]{23}$/);
  });

  it("sends roles, the system instruction, the generation config and the x-goog-api-key header", async () => {
    await provider.generateText(
      request({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Say hello" },
          { role: "assistant", content: "Hello." },
          { role: "system", content: "Answer in French." },
          { role: "user", content: "Again" },
        ],
        maxTokens: 50,
        temperature: 0.2,
        topP: 0.9,
        stop: ["\n\n"],
      }),
    );
    expect(server.requests).toHaveLength(1);
    const [sent] = server.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(sent?.headers["x-goog-api-key"]).toBe(API_KEY);
    expect(sent?.headers.authorization).toBeUndefined();
    expect(sent?.body).toEqual({
      contents: [
        { role: "user", parts: [{ text: "Say hello" }] },
        { role: "model", parts: [{ text: "Hello." }] },
        { role: "user", parts: [{ text: "Again" }] },
      ],
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in French." }] },
      generationConfig: { maxOutputTokens: 50, temperature: 0.2, topP: 0.9, stopSequences: ["\n\n"] },
    });
  });

  it("passes allow-listed providerOptions into the config, with the output cap", async () => {
    await provider.generateText(
      request({
        providerOptions: {
          gemini: { topK: 3, seed: 7, thinkingConfig: { thinkingBudget: 0 } },
          openai: { seed: 2 },
        },
      }),
    );
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.body).toMatchObject({
      generationConfig: {
        topK: 3,
        seed: 7,
        thinkingConfig: { thinkingBudget: 0 },
        maxOutputTokens: DEFAULT_MAX_OUTPUT_TOKENS,
      },
    });
  });

  it.each([
    ["candidateCount", { candidateCount: 8 }],
    ["maxOutputTokens", { maxOutputTokens: 65_536 }],
    ["httpOptions", { httpOptions: { retryOptions: { attempts: 4 }, baseUrl: "http://127.0.0.1:1" } }],
    ["cachedContent", { cachedContent: "cachedContents/x" }],
  ])("refuses providerOptions.gemini.%s before anything is sent", async (option, options) => {
    const error = await rejection(provider.generateText(request({ providerOptions: { gemini: options } })));
    expect(error).toMatchObject({ code: "invalid_request", retryable: false });
    expect(error.message).toContain(`input.providerOptions.gemini.${option} is not allowed`);
    expect(server.requests).toHaveLength(0);
  });

  it("uses the default model when the request names none", async () => {
    await provider.generateText(request({ model: "" }));
    expect(server.requests[0]?.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
  });

  it("counts cached tokens inside the input and thinking tokens inside the output", async () => {
    server.queueResponse({ body: cachedThinkingFixture });
    const result = await provider.generateText(request());
    expect(result.usage).toEqual({
      inputTokens: 2150,
      outputTokens: 310 + 1018,
      cachedInputTokens: 2048,
      reasoningTokens: 1018,
    });
    expect(result.model).toBe("gemini-2.5-pro");
    expect(result.providerRequestId).toBe("Z0TSaOLaCpGIz7IPlcKCuAs");
  });

  it.each([
    ["STOP", "stop"],
    ["MAX_TOKENS", "length"],
    ["SAFETY", "content_filter"],
    ["RECITATION", "content_filter"],
    ["BLOCKLIST", "content_filter"],
    ["PROHIBITED_CONTENT", "content_filter"],
    ["SPII", "content_filter"],
    ["LANGUAGE", "other"],
    ["OTHER", "other"],
    ["MALFORMED_FUNCTION_CALL", "other"],
    ["FINISH_REASON_UNSPECIFIED", "other"],
    ["SOMETHING_NEW", "other"],
  ] as const)("maps finish reason %s to %s", async (wire, expected) => {
    server.queueResponse(responseWith({ finishReason: wire }));
    expect((await provider.generateText(request())).finishReason).toBe(expected);
  });

  it("reports tool_calls when a STOP answer holds a function call", async () => {
    server.queueResponse(
      responseWith({
        content: { role: "model", parts: [{ functionCall: { name: "lookup", args: { id: 1 } } }] },
        finishReason: "STOP",
      }),
    );
    expect(await provider.generateText(request())).toMatchObject({ text: "", finishReason: "tool_calls" });
  });

  it("leaves thought summaries out of the text", async () => {
    server.queueResponse(
      responseWith({
        content: {
          role: "model",
          parts: [{ text: "Weighing the options...", thought: true }, { text: "Use the shared client." }],
        },
      }),
    );
    expect((await provider.generateText(request())).text).toBe("Use the shared client.");
  });

  it("reports length when maxOutputTokens cuts the answer", async () => {
    const result = await provider.generateText(request({ maxTokens: 2 }));
    expect(result).toMatchObject({ text: "This is ", finishReason: "length" });
  });

  it("estimates usage when the response reports none", async () => {
    server.queueResponse(responseWith({}, { usageMetadata: undefined }));
    const result = await provider.generateText(request());
    // "Be brief." and "Say hello" are 3 tokens each; the fixture's 32-character answer is 8.
    expect(result).toMatchObject({
      text: "Hello! How can I help you today?",
      usage: { inputTokens: 6, outputTokens: 8 },
    });
  });

  it("fails with content_filtered, not retryable, when the prompt is blocked", async () => {
    server.queueResponse({ body: geminiPromptBlockedResponse });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({
      code: "content_filtered",
      retryable: false,
      provider: "gemini",
      requestId: "3EbSaPfLF8uJz7IP7vbJoQo",
    });
    expect(error.message).toContain("PROHIBITED_CONTENT");
  });

  it("refuses a request with only system messages without calling the API", async () => {
    const error = await rejection(
      provider.generateText(request({ messages: [{ role: "system", content: "Be brief." }] })),
    );
    expect(error).toMatchObject({ code: "invalid_request", retryable: false });
    expect(server.requests).toHaveLength(0);
  });

  it("takes its configuration from the options only, never from GOOGLE_* or GEMINI_* variables", async () => {
    vi.stubEnv("GOOGLE_API_KEY", "env-key");
    vi.stubEnv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:1");
    vi.stubEnv("GOOGLE_GENAI_USE_VERTEXAI", "true");
    vi.stubEnv("GOOGLE_GENAI_USE_ENTERPRISE", "true");
    vi.stubEnv("GOOGLE_CLOUD_PROJECT", "env-project");
    vi.stubEnv("GOOGLE_CLOUD_LOCATION", "us-central1");
    try {
      const configured = createGeminiProvider({ apiKey: API_KEY, baseURL: server.url });
      await configured.generateText(request());
    } finally {
      vi.unstubAllEnvs();
    }
    expect(server.requests[0]?.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(server.requests[0]?.headers["x-goog-api-key"]).toBe(API_KEY);
  });

  it("sends the configured default headers", async () => {
    const withHeaders = createGeminiProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      defaultHeaders: { "x-genq-tenant": "acme" },
    });
    await withHeaders.generateText(request());
    expect(server.requests[0]?.headers["x-genq-tenant"]).toBe("acme");
  });

  it("validates its options", () => {
    expect(() => createGeminiProvider({ apiKey: "" })).toThrow(/apiKey/);
    expect(() => createGeminiProvider({ apiKey: API_KEY, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe("streamText", () => {
  it("yields the deltas, then a finish with usage and the responseId", async () => {
    const parts = await collect(provider.streamText(request()));
    const deltas = parts.filter((part) => part.type === "text-delta").map((part) => part.delta);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join("")).toBe("This is a fake reply to: Say hello");
    const finish = parts.at(-1);
    expect(finish).toMatchObject({
      type: "finish",
      finishReason: "stop",
      model: "gemini-2.5-flash",
      usage: { inputTokens: 6, outputTokens: 9 },
    });
    expect(finish?.type === "finish" && finish.providerRequestId).toMatch(/^[\w-]{23}$/);
    expect(server.requests[0]).toMatchObject({
      path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
      query: { alt: "sse" },
    });
  });

  it("takes the usage from the last chunk", async () => {
    server.queueResponse({ sse: streamChunksFixture });
    const parts = await collect(provider.streamText(request()));
    expect(parts).toEqual([
      { type: "text-delta", delta: "Hello" },
      { type: "text-delta", delta: "! How can I help you today?" },
      {
        type: "finish",
        finishReason: "stop",
        usage: { inputTokens: 9, outputTokens: 9 },
        model: "gemini-2.5-flash",
        providerRequestId: "h0XSaKXoEY2Gz7IPoZzD2A4",
      },
    ]);
  });

  it("fails with content_filtered when the prompt is blocked", async () => {
    server.queueResponse({ sse: [geminiPromptBlockedResponse] });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "content_filtered", retryable: false });
  });

  it("maps an error sent as a stream chunk", async () => {
    const [first] = streamChunksFixture;
    server.queueResponse({ sse: [first, geminiErrorBodies.unavailable] });
    const received: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const part of provider.streamText(request())) {
          if (part.type === "text-delta") received.push(part.delta);
        }
      })(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 503 });
    expect(received).toEqual(["Hello"]);
  });

  it("fails with provider_unavailable when the stream ends without a finish reason", async () => {
    const [first] = streamChunksFixture;
    server.queueResponse({ sse: [first] });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
  });

  it("fails with canceled when the signal aborts mid-stream", async () => {
    server.setHandler(() => ({ sse: streamChunksFixture, sseDelayMs: 200 }));
    const controller = new AbortController();
    const received: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const part of provider.streamText(request({ signal: controller.signal }))) {
          if (part.type === "text-delta") {
            received.push(part.delta);
            controller.abort();
          }
        }
      })(),
    );
    expect(error.code).toBe("canceled");
    expect(received).toEqual(["Hello"]);
  });

  it("maps an HTTP error before the stream starts", async () => {
    server.queueResponse({ status: 429, body: geminiErrorBodies.rateLimit });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "rate_limited", retryAfterMs: 7000, status: 429 });
    expect(server.requests).toHaveLength(1);
  });
});

describe("errors", () => {
  it("maps 429 RESOURCE_EXHAUSTED with RetryInfo 7s to rate_limited, retryable after 7000 ms", async () => {
    server.queueResponse({ status: 429, body: geminiErrorBodies.rateLimit });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({
      code: "rate_limited",
      retryable: true,
      retryAfterMs: 7000,
      status: 429,
      provider: "gemini",
    });
    expect(server.requests).toHaveLength(1);
  });

  it("maps 429 for a used-up daily quota to credit_exhausted, not retryable", async () => {
    server.queueResponse({ status: 429, body: geminiErrorBodies.dailyQuota });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "credit_exhausted", retryable: false, status: 429 });
    // The RetryInfo of a few seconds on a daily quota would only waste attempts.
    expect(error.retryAfterMs).toBeUndefined();
  });

  it("maps 429 for depleted prepaid credits to credit_exhausted, not retryable", async () => {
    server.queueResponse({ status: 429, body: geminiErrorBodies.creditsDepleted });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "credit_exhausted",
      retryable: false,
      status: 429,
    });
  });

  it("maps 400 FAILED_PRECONDITION (billing required) to credit_exhausted", async () => {
    server.queueResponse({ status: 400, body: geminiErrorBodies.billingRequired });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "credit_exhausted",
      retryable: false,
      status: 400,
    });
  });

  it("maps 400 INVALID_ARGUMENT to invalid_request", async () => {
    server.queueResponse({ status: 400, body: geminiErrorBodies.invalidArgument });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "invalid_request", retryable: false, status: 400 });
    expect(error.message).toContain(
      "INVALID_ARGUMENT: * GenerateContentRequest.generation_config.temperature",
    );
  });

  it("maps a prompt over the context window to context_length_exceeded", async () => {
    server.queueResponse({ status: 400, body: geminiErrorBodies.contextLengthExceeded });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "context_length_exceeded",
      retryable: false,
    });
  });

  it("maps a wrong key (400 API_KEY_INVALID) to auth_failed", async () => {
    const wrongKey = createGeminiProvider({ apiKey: "AIzaSy-wrong", baseURL: server.url });
    const error = await rejection(wrongKey.generateText(request()));
    expect(error).toMatchObject({ code: "auth_failed", retryable: false, status: 400 });
  });

  it("maps 403 PERMISSION_DENIED to auth_failed", async () => {
    server.queueResponse({ status: 403, body: geminiErrorBodies.unregisteredCaller });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "auth_failed",
      retryable: false,
      status: 403,
    });
  });

  it("maps 404 (an unknown model) to invalid_request", async () => {
    server.queueResponse({ status: 404, body: geminiErrorBodies.modelNotFound });
    expect(await rejection(provider.generateText(request({ model: "gemini-0.9-ultra" })))).toMatchObject({
      code: "invalid_request",
      retryable: false,
      status: 404,
    });
  });

  it("maps 500 to a retryable provider_unavailable after exactly one request", async () => {
    server.queueResponse({ status: 500, body: geminiErrorBodies.internal });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 500 });
    // With retryOptions the SDK would retry a 500 up to four more times; the router owns retries.
    expect(server.requests).toHaveLength(1);
  });

  it("maps 503 UNAVAILABLE to a retryable provider_unavailable", async () => {
    server.queueResponse({ status: 503, body: geminiErrorBodies.unavailable });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "provider_unavailable",
      retryable: true,
      status: 503,
    });
    expect(server.requests).toHaveLength(1);
  });

  it("maps 504 DEADLINE_EXCEEDED to a retryable timeout", async () => {
    server.queueResponse({ status: 504, body: geminiErrorBodies.deadlineExceeded });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "timeout",
      retryable: true,
      status: 504,
    });
  });

  it("maps a refused connection to a retryable provider_unavailable", async () => {
    const unreachable = createGeminiProvider({ apiKey: API_KEY, baseURL: await refusedURL() });
    const error = await rejection(unreachable.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: undefined });
    expect(error.message).toMatch(/ECONNREFUSED/);
  });

  it("maps a dropped connection to provider_unavailable after exactly one request", async () => {
    server.queueResponse({ disconnect: true });
    expect(await rejection(provider.generateText(request()))).toMatchObject({ code: "provider_unavailable" });
    expect(server.requests).toHaveLength(1);
  });

  it("maps the client timeout to a retryable timeout", async () => {
    const impatient = createGeminiProvider({ apiKey: API_KEY, baseURL: server.url, timeoutMs: 50 });
    server.queueResponse({ delayMs: 5_000 });
    expect(await rejection(impatient.generateText(request()))).toMatchObject({
      code: "timeout",
      retryable: true,
    });
  });

  it("maps an aborted request to canceled", async () => {
    const controller = new AbortController();
    // Abort once the server holds the request, so the SDK is mid-call.
    server.setHandler(() => {
      controller.abort(new Error("job canceled by its owner"));
      return { delayMs: 5_000 };
    });
    const error = await rejection(provider.generateText(request({ signal: controller.signal })));
    expect(error).toMatchObject({ code: "canceled", retryable: false });
  });

  it("maps a signal aborted before the call to canceled", async () => {
    const error = await rejection(provider.generateText(request({ signal: AbortSignal.abort() })));
    expect(error.code).toBe("canceled");
  });
});

describe("generateImage", () => {
  it("returns the inlineData PNG bytes, one request per image, with summed usage", async () => {
    const result = await provider.generateImage?.({
      model: "gemini-2.5-flash-image",
      prompt: "a blue square",
      n: 2,
      size: "1536x1024",
    });
    expect(result?.images).toEqual([
      { bytes: fakeGeminiImagePng, mediaType: "image/png" },
      { bytes: fakeGeminiImagePng, mediaType: "image/png" },
    ]);
    expect(result?.usage).toEqual({ images: 2, inputTokens: 8, outputTokens: 2580 });
    expect(result?.model).toBe("gemini-2.5-flash-image");
    expect(result?.providerRequestId).toMatch(/^[\w-]{23}$/);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]).toMatchObject({
      path: "/v1beta/models/gemini-2.5-flash-image:generateContent",
      body: {
        contents: [{ role: "user", parts: [{ text: "a blue square" }] }],
        generationConfig: { responseModalities: ["IMAGE"], imageConfig: { aspectRatio: "3:2" } },
      },
    });
  });

  it("is a real PNG", () => {
    expect([...fakeGeminiImagePng.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it("uses gemini-2.5-flash-image when the request names no model", async () => {
    await provider.generateImage?.({ model: "", prompt: "x", n: 1 });
    expect(server.requests[0]?.path).toBe("/v1beta/models/gemini-2.5-flash-image:generateContent");
  });

  it("sends a ratio size as is, a Gemini size as imageSize, and allow-listed providerOptions", async () => {
    await provider.generateImage?.({
      model: "gemini-3-pro-image-preview",
      prompt: "x",
      n: 1,
      size: "16:9",
      quality: "2k",
      providerOptions: { gemini: { seed: 5 } },
    });
    expect(server.requests[0]?.body).toMatchObject({
      generationConfig: {
        responseModalities: ["IMAGE"],
        seed: 5,
        imageConfig: { aspectRatio: "16:9", imageSize: "2K" },
      },
    });
  });

  it("refuses an imageConfig (its imageSize reprices) or candidateCount in providerOptions", async () => {
    for (const options of [{ imageConfig: { imageSize: "4K" } }, { candidateCount: 4 }]) {
      const error = await rejection(
        provider.generateImage!({ model: "", prompt: "x", n: 1, providerOptions: { gemini: options } }),
      );
      expect(error.code).toBe("invalid_request");
    }
    expect(server.requests).toHaveLength(0);
  });

  it("maps an OpenAI pixel size to the nearest ratio and ignores an OpenAI quality", async () => {
    await provider.generateImage?.({ model: "", prompt: "x", n: 1, size: "1792x1024", quality: "high" });
    expect(server.requests[0]?.body).toMatchObject({
      generationConfig: { imageConfig: { aspectRatio: "16:9" } },
    });
    expect(JSON.stringify(server.requests[0]?.body)).not.toContain("imageSize");
  });

  it("skips text parts and thought images", async () => {
    const png = Buffer.from(fakeGeminiImagePng).toString("base64");
    server.queueResponse(
      responseWith({
        content: {
          role: "model",
          parts: [
            { text: "Here you go." },
            { inlineData: { mimeType: "image/png", data: png }, thought: true },
            { inlineData: { mimeType: "image/png", data: png } },
          ],
        },
      }),
    );
    const result = await provider.generateImage?.({ model: "", prompt: "x", n: 1 });
    expect(result?.images).toEqual([{ bytes: fakeGeminiImagePng, mediaType: "image/png" }]);
  });

  it("fails with content_filtered when the image is blocked", async () => {
    server.queueResponse(
      responseWith({ content: { role: "model", parts: [] }, finishReason: "IMAGE_SAFETY" }),
    );
    const error = await rejection(
      provider.generateImage?.({ model: "", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "content_filtered", retryable: false });
  });

  it("stops at the first failure: a blocked prompt is sent once, not n times", async () => {
    server.queueResponse({ body: geminiPromptBlockedResponse });
    const error = await rejection(
      provider.generateImage?.({ model: "", prompt: "x", n: 3 }) ?? Promise.resolve(),
    );
    expect(error.code).toBe("content_filtered");
    expect(server.requests).toHaveLength(1);
  });

  it("fails with a retryable provider_unavailable when the model answers without an image", async () => {
    server.queueResponse(
      responseWith({
        content: { role: "model", parts: [{ text: "I can only describe it." }] },
        finishReason: "NO_IMAGE",
      }),
    );
    const error = await rejection(
      provider.generateImage?.({ model: "", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
    expect(error.message).toContain("NO_IMAGE");
  });
});

describe("healthCheck", () => {
  it("lists the first page of models and times the call", async () => {
    const result = await provider.healthCheck();
    expect(result.ok).toBe(true);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.requests[0]).toMatchObject({
      method: "GET",
      path: "/v1beta/models",
      query: { pageSize: "1" },
    });
  });

  it("reports not ok with the mapped code when the key is wrong", async () => {
    const wrongKey = createGeminiProvider({ apiKey: "AIzaSy-wrong", baseURL: server.url });
    const result = await wrongKey.healthCheck();
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^auth_failed: /);
  });
});

describe("another name", () => {
  it("reads its own providerOptions and names itself in errors", async () => {
    const secondary = createGeminiProvider({ name: "gemini-eu", apiKey: API_KEY, baseURL: server.url });
    await secondary.generateText(
      request({ providerOptions: { "gemini-eu": { topK: 5 }, gemini: { topK: 9 } } }),
    );
    expect(server.requests[0]?.body).toMatchObject({ generationConfig: { topK: 5 } });
    server.queueResponse({ status: 503, body: geminiErrorBodies.unavailable });
    expect(await rejection(secondary.generateText(request()))).toMatchObject({ provider: "gemini-eu" });
  });
});

afterEach(() => {
  vi.unstubAllEnvs();
});
