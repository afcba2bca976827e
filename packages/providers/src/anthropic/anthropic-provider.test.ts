import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { Provider, TextGenerationRequest, TextStreamPart } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { createAnthropicProvider } from "./anthropic-provider.ts";
import {
  anthropicErrorBodies,
  type FakeAnthropicServer,
  startFakeAnthropicServer,
  toAnthropicStreamEvents,
} from "./testing/fake-anthropic-server.ts";

const API_KEY = "sk-ant-api03-test-key";
const MODEL = "claude-haiku-4-5";

let server: FakeAnthropicServer;
let provider: Provider;

beforeAll(async () => {
  server = await startFakeAnthropicServer({ apiKey: API_KEY });
  provider = createAnthropicProvider({ apiKey: API_KEY, baseURL: server.url, defaultModel: MODEL });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

function request(overrides: Partial<TextGenerationRequest> = {}): TextGenerationRequest {
  return {
    model: MODEL,
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

/** Cache-heavy usage as the API reports it: input_tokens excludes cache reads and writes. */
const CACHED_USAGE = {
  input_tokens: 20,
  cache_creation_input_tokens: 100,
  cache_read_input_tokens: 1000,
  output_tokens: 40,
  output_tokens_details: { thinking_tokens: 25 },
};
const NORMALIZED_CACHED_USAGE = {
  inputTokens: 1120,
  cachedInputTokens: 1000,
  outputTokens: 40,
  reasoningTokens: 25,
};

const STOP_REASONS = [
  ["end_turn", "stop"],
  ["stop_sequence", "stop"],
  ["max_tokens", "length"],
  ["model_context_window_exceeded", "length"],
  ["tool_use", "tool_calls"],
  ["refusal", "content_filter"],
  ["pause_turn", "other"],
  ["something_new", "other"],
] as const;

describe("generateText", () => {
  it("returns the text, usage, finish reason and request id", async () => {
    const result = await provider.generateText(request());
    expect(result.text).toBe("This is a fake reply to: Say hello");
    expect(result.finishReason).toBe("stop");
    expect(result.model).toBe(MODEL);
    expect(result.usage).toEqual({ inputTokens: 6, outputTokens: 9, cachedInputTokens: 0 });
    expect(result.providerRequestId).toMatch(/^req_011C[1-9A-Za-z]{20}$/);
  });

  it("sends the system prompt, turns, sampling settings, the key and the API version", async () => {
    await provider.generateText(
      request({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Say hello" },
          { role: "assistant", content: "Hello." },
          { role: "user", content: "Again" },
        ],
        maxTokens: 50,
        temperature: 0.2,
        topP: 0.9,
        stop: ["\n\nHuman:"],
      }),
    );
    expect(server.requests).toHaveLength(1);
    const [sent] = server.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1/messages");
    // FACTS.md: SDK 1.x sends the key as a bearer token, not x-api-key.
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.headers["anthropic-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(sent?.headers["x-stainless-retry-count"]).toBe("0");
    expect(sent?.body).toEqual({
      model: MODEL,
      system: "Be brief.",
      messages: [
        { role: "user", content: "Say hello" },
        { role: "assistant", content: "Hello." },
        { role: "user", content: "Again" },
      ],
      max_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ["\n\nHuman:"],
      stream: false,
    });
  });

  it("sends max_tokens 1024 by default, or the configured default, and no system without system messages", async () => {
    await provider.generateText(request({ messages: [{ role: "user", content: "Hi" }] }));
    const frugal = createAnthropicProvider({ apiKey: API_KEY, baseURL: server.url, defaultMaxTokens: 64 });
    await frugal.generateText(request());
    expect(server.requests[0]?.body).toEqual({
      model: MODEL,
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 1024,
      stream: false,
    });
    expect(server.requests[1]?.body).toMatchObject({ max_tokens: 64 });
  });

  it("folds several system messages into one system prompt, in order", async () => {
    await provider.generateText(
      request({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
          { role: "system", content: "Answer in French." },
        ],
      }),
    );
    expect(server.requests[0]?.body).toMatchObject({
      system: "Be brief.\n\nAnswer in French.",
      messages: [{ role: "user", content: "Hi" }],
    });
  });

  it("passes its own allow-listed providerOptions through as body fields", async () => {
    await provider.generateText(
      request({
        maxTokens: 4_000,
        providerOptions: {
          anthropic: {
            top_k: 5,
            thinking: { type: "enabled", budget_tokens: 2_000 },
            metadata: { user_id: "u-1" },
          },
          openai: { seed: 7 },
        },
      }),
    );
    const body = server.requests[0]?.body as Record<string, unknown>;
    expect(body).toMatchObject({
      top_k: 5,
      thinking: { type: "enabled", budget_tokens: 2_000 },
      metadata: { user_id: "u-1" },
      max_tokens: 4_000,
    });
    expect(body).not.toHaveProperty("seed");
  });

  it.each([
    ["max_tokens", { max_tokens: 100_000 }],
    ["service_tier", { service_tier: "priority" }],
    ["cache_control", { cache_control: { type: "ephemeral" } }],
    ["system", { system: "a long hidden prompt" }],
  ])("refuses providerOptions.anthropic.%s before anything is sent", async (option, options) => {
    const error = await rejection(
      provider.generateText(request({ providerOptions: { anthropic: options } })),
    );
    expect(error).toMatchObject({ code: "invalid_request", retryable: false });
    expect(error.message).toContain(`input.providerOptions.anthropic.${option} is not allowed`);
    expect(server.requests).toHaveLength(0);
  });

  it("uses the default model when the request names none, and fails without one", async () => {
    await provider.generateText(request({ model: "" }));
    expect(server.requests[0]?.body).toMatchObject({ model: MODEL });
    const withoutDefault = createAnthropicProvider({ apiKey: API_KEY, baseURL: server.url });
    const error = await rejection(withoutDefault.generateText(request({ model: "" })));
    expect(error).toMatchObject({ code: "invalid_request", retryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it("counts cache reads and writes as input, cache reads as cached, thinking as reasoning", async () => {
    server.queueResponse({ message: { usage: CACHED_USAGE } });
    const result = await provider.generateText(request());
    expect(result.usage).toEqual(NORMALIZED_CACHED_USAGE);
  });

  it.each(STOP_REASONS)("maps stop_reason %s to %s", async (wire, expected) => {
    server.queueResponse({ message: { stop_reason: wire } });
    expect((await provider.generateText(request())).finishReason).toBe(expected);
  });

  it("reads the text of text blocks only", async () => {
    server.queueResponse({
      message: {
        content: [
          { type: "thinking", thinking: "The user wants a greeting.", signature: "EqQBCgIYAhIM1gbcDa9GJwZA" },
          { type: "text", text: "Hello" },
          { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "wave", input: {} },
          { type: "text", text: " there." },
        ],
        stop_reason: "tool_use",
      },
    });
    const result = await provider.generateText(request());
    expect(result).toMatchObject({ text: "Hello there.", finishReason: "tool_calls" });
  });

  it("reports length when max_tokens cuts the answer, and stop at a stop sequence", async () => {
    expect(await provider.generateText(request({ maxTokens: 2 }))).toMatchObject({
      text: "This is ",
      finishReason: "length",
    });
    expect(await provider.generateText(request({ stop: [" reply"] }))).toMatchObject({
      text: "This is a fake",
      finishReason: "stop",
    });
  });
});

describe("streamText", () => {
  it("yields the deltas, then a finish with usage and the request id", async () => {
    const parts = await collect(provider.streamText(request()));
    const deltas = parts.filter((part) => part.type === "text-delta").map((part) => part.delta);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join("")).toBe("This is a fake reply to: Say hello");
    const finish = parts.at(-1);
    expect(finish).toMatchObject({
      type: "finish",
      finishReason: "stop",
      model: MODEL,
      usage: { inputTokens: 6, outputTokens: 9, cachedInputTokens: 0 },
    });
    expect(finish?.type === "finish" && finish.providerRequestId).toMatch(/^req_011C/);
    expect(server.requests[0]?.body).toMatchObject({ stream: true, system: "Be brief.", max_tokens: 1024 });
  });

  it("takes the input from message_start and the final output from message_delta", async () => {
    const [start, ...rest] = toAnthropicStreamEvents({
      id: "msg_01StreamUsage",
      model: "claude-haiku-4-5-20251001",
      content: [{ type: "text", text: "Cached answer." }],
      stop_reason: "end_turn",
      usage: CACHED_USAGE,
    });
    // Older API versions send only output_tokens in message_delta.
    const events = rest.map((event) =>
      event.event === "message_delta"
        ? {
            ...event,
            data: {
              type: "message_delta",
              delta: { stop_reason: "end_turn", stop_sequence: null },
              usage: { output_tokens: 40, output_tokens_details: { thinking_tokens: 25 } },
            },
          }
        : event,
    );
    server.queueResponse({ events: [start ?? { event: "ping", data: {} }, ...events] });
    const parts = await collect(provider.streamText(request()));
    expect(parts.at(-1)).toEqual({
      type: "finish",
      finishReason: "stop",
      model: "claude-haiku-4-5-20251001",
      usage: NORMALIZED_CACHED_USAGE,
      providerRequestId: expect.stringMatching(/^req_/),
    });
  });

  it.each(STOP_REASONS)("maps a streamed stop_reason %s to %s", async (wire, expected) => {
    server.queueResponse({ message: { stop_reason: wire } });
    const parts = await collect(provider.streamText(request()));
    expect(parts.at(-1)).toMatchObject({ type: "finish", finishReason: expected });
  });

  it("streams only text deltas, not thinking or tool input", async () => {
    server.queueResponse({
      message: {
        content: [
          { type: "thinking", thinking: "Plan the greeting.", signature: "EqQBCgIYAhIM1gbcDa9GJwZA" },
          { type: "text", text: "Hi there." },
          { type: "tool_use", id: "toolu_01A09q90qw90lq917835lq9", name: "wave", input: { times: 2 } },
        ],
        stop_reason: "tool_use",
      },
    });
    const parts = await collect(provider.streamText(request()));
    expect(parts.filter((part) => part.type === "text-delta").map((part) => part.delta)).toEqual([
      "Hi ",
      "there.",
    ]);
    expect(parts.at(-1)).toMatchObject({ type: "finish", finishReason: "tool_calls" });
  });

  it("fails with canceled when the signal aborts mid-stream", async () => {
    server.setHandler(() => ({ message: {}, eventDelayMs: 50 }));
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
    expect(received).toEqual(["This "]);
  });

  it("fails with provider_unavailable when the stream ends before message_stop", async () => {
    const events = toAnthropicStreamEvents({
      id: "msg_01Cut",
      model: MODEL,
      content: [{ type: "text", text: "cut short" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 3, output_tokens: 2 },
    });
    server.queueResponse({ events: events.slice(0, -2) });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
    expect(error.requestId).toMatch(/^req_/);
  });

  it("maps an error event inside the stream (overloaded)", async () => {
    const events = toAnthropicStreamEvents({
      id: "msg_01Overloaded",
      model: MODEL,
      content: [{ type: "text", text: "partial answer" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 3, output_tokens: 2 },
    });
    server.queueResponse({
      events: [
        ...events.slice(0, 3),
        { event: "error", data: { type: "error", error: anthropicErrorBodies.overloaded.error } },
      ],
    });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: undefined });
    expect(error.requestId).toMatch(/^req_/);
  });

  it("maps an HTTP error before the stream starts", async () => {
    server.queueResponse({
      status: 429,
      body: anthropicErrorBodies.rateLimit,
      headers: { "retry-after": "3" },
    });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "rate_limited", retryAfterMs: 3000, status: 429 });
  });
});

describe("errors", () => {
  it("maps 429 rate_limit_error with retry-after: 3 to rate_limited, retryable after 3000 ms", async () => {
    server.queueResponse({
      status: 429,
      body: anthropicErrorBodies.rateLimit,
      headers: { "retry-after": "3", "request-id": "req_011CRateLimited000000000" },
    });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({
      code: "rate_limited",
      retryable: true,
      retryAfterMs: 3000,
      status: 429,
      provider: "anthropic",
      requestId: "req_011CRateLimited000000000",
    });
  });

  it("maps 529 overloaded_error to a retryable provider_unavailable", async () => {
    server.queueResponse({ status: 529, body: anthropicErrorBodies.overloaded });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 529 });
    expect(error.requestId).toMatch(/^req_011C/);
  });

  it("maps 500 to provider_unavailable after exactly one request", async () => {
    server.queueResponse({ status: 500, body: anthropicErrorBodies.api });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 500 });
    // The SDK would retry a 500 twice by default; maxRetries 0 leaves retries to the router.
    expect(server.requests).toHaveLength(1);
  });

  it("maps 401 (a wrong key) to auth_failed", async () => {
    const wrongKey = createAnthropicProvider({ apiKey: "sk-ant-wrong", baseURL: server.url });
    const error = await rejection(wrongKey.generateText(request()));
    expect(error).toMatchObject({ code: "auth_failed", retryable: false, status: 401 });
    expect(error.message).toContain("invalid x-api-key");
  });

  it("maps 403 permission_error (about the model or feature, not the key) to invalid_request", async () => {
    server.queueResponse({ status: 403, body: anthropicErrorBodies.permission });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "invalid_request",
      retryable: false,
      status: 403,
    });
  });

  it("maps the 400 credit balance error to credit_exhausted, not retryable", async () => {
    server.queueResponse({ status: 400, body: anthropicErrorBodies.creditBalance });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "credit_exhausted", retryable: false, status: 400 });
  });

  it("maps 400 prompt is too long to context_length_exceeded", async () => {
    server.queueResponse({ status: 400, body: anthropicErrorBodies.promptTooLong });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "context_length_exceeded", retryable: false, status: 400 });
  });

  it("maps other 400s and an unknown model's 404 to invalid_request", async () => {
    server.queueResponse(
      {
        status: 400,
        body: {
          type: "error",
          error: { type: "invalid_request_error", message: "temperature: range: 0..1" },
        },
      },
      { status: 404, body: anthropicErrorBodies.notFound },
    );
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "invalid_request",
      retryable: false,
      status: 400,
    });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "invalid_request",
      status: 404,
    });
  });

  it("maps a refused connection to a retryable provider_unavailable", async () => {
    const unreachable = createAnthropicProvider({ apiKey: API_KEY, baseURL: await refusedURL() });
    const error = await rejection(unreachable.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: undefined });
  });

  it("maps a dropped connection to provider_unavailable after one request", async () => {
    server.queueResponse({ disconnect: true });
    expect(await rejection(provider.generateText(request()))).toMatchObject({ code: "provider_unavailable" });
    expect(server.requests).toHaveLength(1);
  });

  it("maps the client timeout to a retryable timeout", async () => {
    const impatient = createAnthropicProvider({ apiKey: API_KEY, baseURL: server.url, timeoutMs: 50 });
    server.queueResponse({ delayMs: 5_000 });
    expect(await rejection(impatient.generateText(request()))).toMatchObject({
      code: "timeout",
      retryable: true,
    });
    expect(server.requests).toHaveLength(1);
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

  it("names the configured provider in its errors", async () => {
    const second = createAnthropicProvider({ name: "anthropic-eu", apiKey: API_KEY, baseURL: server.url });
    server.queueResponse({ status: 529, body: anthropicErrorBodies.overloaded });
    expect(await rejection(second.generateText(request()))).toMatchObject({ provider: "anthropic-eu" });
  });
});

describe("configuration", () => {
  it("rejects an empty key and bad limits", () => {
    expect(() => createAnthropicProvider({ apiKey: "" })).toThrow(TypeError);
    expect(() => createAnthropicProvider({ apiKey: API_KEY, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createAnthropicProvider({ apiKey: API_KEY, defaultMaxTokens: 1.5 })).toThrow(RangeError);
  });

  it("sends the default headers and nothing taken from ANTHROPIC_* variables", async () => {
    const elsewhere = await refusedURL();
    vi.stubEnv("ANTHROPIC_BASE_URL", elsewhere);
    vi.stubEnv("ANTHROPIC_API_KEY", "sk-ant-from-environment");
    vi.stubEnv("ANTHROPIC_AUTH_TOKEN", "token-from-environment");
    vi.stubEnv("ANTHROPIC_CUSTOM_HEADERS", "x-from-environment: yes\nanthropic-beta: environment-beta");
    const isolated = createAnthropicProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      defaultHeaders: { "anthropic-beta": "caller-beta" },
    });
    await isolated.generateText(request());
    const [sent] = server.requests;
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.headers["anthropic-beta"]).toBe("caller-beta");
    expect(sent?.headers).not.toHaveProperty("x-from-environment");
    expect(sent?.headers).not.toHaveProperty("x-api-key");

    // Without a baseURL the provider goes to Anthropic, not to ANTHROPIC_BASE_URL.
    const calls: Array<{ url: string; authorization: string | null }> = [];
    const offline: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      calls.push({ url, authorization: new Headers(init?.headers).get("authorization") });
      return Response.json({ data: [], has_more: false, first_id: null, last_id: null });
    };
    const defaulted = createAnthropicProvider({ apiKey: API_KEY, fetch: offline });
    expect(await defaulted.healthCheck()).toMatchObject({ ok: true });
    expect(calls).toEqual([
      { url: "https://api.anthropic.com/v1/models?limit=1", authorization: `Bearer ${API_KEY}` },
    ]);
  });

  it("has no image generation", () => {
    expect(provider.generateImage).toBeUndefined();
  });
});

describe("healthCheck", () => {
  it("lists one page of models and times the call", async () => {
    const result = await provider.healthCheck();
    expect(result.ok).toBe(true);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: "GET", path: "/v1/models" });
  });

  it("reports not ok with the mapped code when the key is wrong", async () => {
    const wrongKey = createAnthropicProvider({ apiKey: "sk-ant-wrong", baseURL: server.url });
    const result = await wrongKey.healthCheck();
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^auth_failed: /);
  });

  it("throws canceled when its signal aborts", async () => {
    const controller = new AbortController();
    server.setHandler(() => {
      controller.abort();
      return { delayMs: 5_000 };
    });
    const error = await rejection(provider.healthCheck({ signal: controller.signal }));
    expect(error.code).toBe("canceled");
  });
});
