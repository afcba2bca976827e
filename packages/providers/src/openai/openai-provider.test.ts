import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseHostAllowlist } from "@genq/net-guard";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_MAX_OUTPUT_TOKENS } from "../allowed-provider-options.ts";
import { renderPng } from "../mock/render-png.ts";
import type { Provider, TextGenerationRequest, TextStreamPart } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import chatCompletionFixture from "./__fixtures__/chat-completion.json" with { type: "json" };
import { createOpenAIProvider } from "./openai-provider.ts";
import {
  type FakeOpenAIServer,
  fakeImagePng,
  openAIErrorBodies,
  startFakeOpenAIServer,
} from "./testing/fake-openai-server.ts";

const API_KEY = "sk-test-key";

let server: FakeOpenAIServer;
let provider: Provider;

beforeAll(async () => {
  server = await startFakeOpenAIServer({ apiKey: API_KEY });
  provider = createOpenAIProvider({ apiKey: API_KEY, baseURL: server.url, defaultModel: "gpt-4o-mini" });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
});

function request(overrides: Partial<TextGenerationRequest> = {}): TextGenerationRequest {
  return {
    model: "gpt-4o-mini",
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
  return `http://127.0.0.1:${port}/v1`;
}

describe("generateText", () => {
  it("returns the text, usage, finish reason and request id", async () => {
    const result = await provider.generateText(request());
    expect(result.text).toBe("This is a fake reply to: Say hello");
    expect(result.finishReason).toBe("stop");
    expect(result.model).toBe("gpt-4o-mini");
    expect(result.usage).toEqual({
      inputTokens: 6,
      outputTokens: 9,
      cachedInputTokens: 0,
      reasoningTokens: 0,
    });
    expect(result.providerRequestId).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it("sends the model, messages, sampling settings and the bearer key", async () => {
    await provider.generateText(request({ maxTokens: 50, temperature: 0.2, topP: 0.9, stop: ["\n\n"] }));
    expect(server.requests).toHaveLength(1);
    const [sent] = server.requests;
    expect(sent?.method).toBe("POST");
    expect(sent?.path).toBe("/v1/chat/completions");
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.body).toEqual({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      max_tokens: 50,
      temperature: 0.2,
      top_p: 0.9,
      stop: ["\n\n"],
      stream: false,
    });
  });

  it("passes providerOptions through as body fields and can send max_completion_tokens", async () => {
    await provider.generateText(
      request({
        maxTokens: 20,
        providerOptions: {
          openai: { seed: 7, reasoning_effort: "low", useMaxCompletionTokens: true },
          anthropic: { ignored: true },
        },
      }),
    );
    const body = server.requests[0]?.body as Record<string, unknown>;
    expect(body).toMatchObject({ seed: 7, reasoning_effort: "low", max_completion_tokens: 20 });
    expect(body).not.toHaveProperty("max_tokens");
    expect(body).not.toHaveProperty("useMaxCompletionTokens");
    expect(body).not.toHaveProperty("ignored");
  });

  it("always sends an output cap: the default when the request sets none", async () => {
    await provider.generateText(request());
    await collect(provider.streamText(request()));
    const withCompletionTokens = createOpenAIProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      useMaxCompletionTokens: true,
    });
    await withCompletionTokens.generateText(request());
    const bodies = server.requests.map((sent) => sent.body as Record<string, unknown>);
    expect(bodies[0]).toMatchObject({ max_tokens: DEFAULT_MAX_OUTPUT_TOKENS });
    expect(bodies[1]).toMatchObject({ max_tokens: DEFAULT_MAX_OUTPUT_TOKENS, stream: true });
    expect(bodies[2]).toMatchObject({ max_completion_tokens: DEFAULT_MAX_OUTPUT_TOKENS });
  });

  it.each([
    ["n", { n: 50 }],
    ["max_completion_tokens", { max_completion_tokens: 100_000 }],
    ["max_tokens", { max_tokens: 100_000 }],
    ["service_tier", { service_tier: "priority" }],
    ["store", { store: true }],
    ["stream_options", { stream_options: null }],
  ])("refuses providerOptions.openai.%s before anything is sent", async (option, options) => {
    const error = await rejection(
      provider.generateText(request({ maxTokens: 10, providerOptions: { openai: options } })),
    );
    expect(error).toMatchObject({ code: "invalid_request", retryable: false });
    expect(error.message).toContain(`input.providerOptions.openai.${option} is not allowed`);
    const streamError = await rejection(
      collect(provider.streamText(request({ providerOptions: { openai: options } }))),
    );
    expect(streamError.code).toBe("invalid_request");
    expect(server.requests).toHaveLength(0);
  });

  it("refuses image n, quality and size smuggled in providerOptions, sending nothing", async () => {
    for (const options of [{ n: 10 }, { quality: "high" }, { size: "1536x1024" }]) {
      const error = await rejection(
        provider.generateImage!({
          model: "gpt-image-1",
          prompt: "a cat",
          n: 1,
          providerOptions: { openai: options },
        }),
      );
      expect(error.code).toBe("invalid_request");
    }
    expect(server.requests).toHaveLength(0);
  });

  it("uses the default model when the request names none", async () => {
    await provider.generateText(request({ model: "" }));
    expect(server.requests[0]?.body).toMatchObject({ model: "gpt-4o-mini" });
  });

  it("normalizes cached and reasoning tokens and maps finish reasons", async () => {
    const cases = [
      ["length", "length"],
      ["content_filter", "content_filter"],
      ["tool_calls", "tool_calls"],
      ["function_call", "tool_calls"],
      ["something_new", "other"],
    ] as const;
    for (const [wire, expected] of cases) {
      const firstChoice = chatCompletionFixture.choices[0];
      server.queueResponse({
        body: {
          ...chatCompletionFixture,
          choices: [{ ...firstChoice, finish_reason: wire }],
          usage: {
            ...chatCompletionFixture.usage,
            prompt_tokens: 100,
            completion_tokens: 40,
            prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 },
            completion_tokens_details: {
              ...chatCompletionFixture.usage.completion_tokens_details,
              reasoning_tokens: 30,
            },
          },
        },
      });
      const result = await provider.generateText(request());
      expect(result.finishReason).toBe(expected);
      expect(result.usage).toEqual({
        inputTokens: 100,
        outputTokens: 40,
        cachedInputTokens: 64,
        reasoningTokens: 30,
      });
      expect(result.model).toBe("gpt-4o-mini-2024-07-18");
    }
  });

  it("reports length when max_tokens cuts the answer", async () => {
    const result = await provider.generateText(request({ maxTokens: 2 }));
    expect(result).toMatchObject({ text: "This is ", finishReason: "length" });
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
      model: "gpt-4o-mini",
      usage: { inputTokens: 6, outputTokens: 9, cachedInputTokens: 0, reasoningTokens: 0 },
    });
    expect(finish?.type === "finish" && finish.providerRequestId).toMatch(/^req_/);
    expect(server.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("estimates usage when the server reports none", async () => {
    server.setHandler(() => ({
      sse: [
        { ...chunkOf("Hello"), choices: [{ index: 0, delta: { content: "Hello there, friend" } }] },
        { ...chunkOf("end"), choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      ],
    }));
    const parts = await collect(provider.streamText(request()));
    expect(parts.at(-1)).toMatchObject({ type: "finish", usage: { inputTokens: 6, outputTokens: 5 } });
  });

  it("fails with canceled when the signal aborts mid-stream", async () => {
    server.setHandler(() => ({
      sse: [
        { ...chunkOf("Hello"), choices: [{ index: 0, delta: { content: "Hello" }, finish_reason: null }] },
        { ...chunkOf("never"), choices: [{ index: 0, delta: { content: " never" }, finish_reason: "stop" }] },
      ],
      sseDelayMs: 200,
    }));
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

  it("fails with provider_unavailable when the stream ends without a finish reason", async () => {
    server.queueResponse({
      sse: [{ ...chunkOf("cut"), choices: [{ index: 0, delta: { content: "cut" } }] }],
    });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
  });

  it("maps an HTTP error before the stream starts", async () => {
    server.queueResponse({ status: 429, body: openAIErrorBodies.rateLimit, headers: { "retry-after": "3" } });
    const error = await rejection(collect(provider.streamText(request())));
    expect(error).toMatchObject({ code: "rate_limited", retryAfterMs: 3000, status: 429 });
  });
});

function chunkOf(id: string) {
  return { id: `chatcmpl-${id}`, object: "chat.completion.chunk", created: 1741570283, model: "gpt-4o-mini" };
}

describe("errors", () => {
  it("maps 429 insufficient_quota to credit_exhausted, not retryable", async () => {
    server.queueResponse({
      status: 429,
      body: openAIErrorBodies.insufficientQuota,
      headers: { "x-request-id": "req_q" },
    });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({
      code: "credit_exhausted",
      retryable: false,
      status: 429,
      provider: "openai",
      requestId: "req_q",
    });
  });

  it("maps 429 with retry-after: 2 to rate_limited, retryable after 2000 ms", async () => {
    server.queueResponse({ status: 429, body: openAIErrorBodies.rateLimit, headers: { "retry-after": "2" } });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "rate_limited", retryable: true, retryAfterMs: 2000, status: 429 });
  });

  it("prefers retry-after-ms", async () => {
    server.queueResponse({
      status: 429,
      body: openAIErrorBodies.rateLimit,
      headers: { "retry-after-ms": "250", "retry-after": "2" },
    });
    expect((await rejection(provider.generateText(request()))).retryAfterMs).toBe(250);
  });

  it("maps 500 to a retryable provider_unavailable after exactly one request", async () => {
    server.queueResponse({ status: 500, body: openAIErrorBodies.serverError });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 500 });
    expect(error.requestId).toMatch(/^req_/);
    // The SDK would retry a 500 twice by default; maxRetries 0 leaves retries to the router.
    expect(server.requests).toHaveLength(1);
  });

  it("maps 401 (a wrong key) to auth_failed", async () => {
    const wrongKey = createOpenAIProvider({ apiKey: "sk-wrong", baseURL: server.url });
    const error = await rejection(wrongKey.generateText(request()));
    expect(error).toMatchObject({ code: "auth_failed", retryable: false, status: 401 });
  });

  it("maps 400 context_length_exceeded", async () => {
    server.queueResponse({ status: 400, body: openAIErrorBodies.contextLengthExceeded });
    const error = await rejection(provider.generateText(request()));
    expect(error).toMatchObject({ code: "context_length_exceeded", retryable: false, status: 400 });
  });

  it("maps other 400s to invalid_request", async () => {
    server.queueResponse({
      status: 400,
      body: {
        error: {
          message: "Invalid value for 'temperature'",
          type: "invalid_request_error",
          param: "temperature",
          code: null,
        },
      },
    });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "invalid_request",
      retryable: false,
    });
  });

  it("maps 402 to credit_exhausted", async () => {
    server.queueResponse({
      status: 402,
      body: { error: { message: "Insufficient Balance", type: "unknown_error" } },
    });
    expect(await rejection(provider.generateText(request()))).toMatchObject({
      code: "credit_exhausted",
      retryable: false,
    });
  });

  it("maps a refused connection to a retryable provider_unavailable", async () => {
    const unreachable = createOpenAIProvider({ apiKey: API_KEY, baseURL: await refusedURL() });
    const error = await rejection(unreachable.generateText(request()));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: undefined });
  });

  it("maps a dropped connection to provider_unavailable", async () => {
    server.queueResponse({ disconnect: true });
    expect(await rejection(provider.generateText(request()))).toMatchObject({ code: "provider_unavailable" });
    expect(server.requests).toHaveLength(1);
  });

  it("maps the client timeout to a retryable timeout", async () => {
    const impatient = createOpenAIProvider({ apiKey: API_KEY, baseURL: server.url, timeoutMs: 50 });
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
});

describe("generateImage", () => {
  it("decodes b64_json images and reports usage", async () => {
    const result = await provider.generateImage?.({
      model: "gpt-image-1",
      prompt: "a blue square",
      n: 2,
      size: "1024x1024",
      quality: "low",
    });
    expect(result?.images).toHaveLength(2);
    expect(result?.images[0]).toEqual({ bytes: fakeImagePng, mediaType: "image/png" });
    expect(result?.usage).toEqual({ images: 2, inputTokens: 50, outputTokens: 1056 });
    expect(result?.model).toBe("gpt-image-1");
    expect(result?.providerRequestId).toMatch(/^req_/);
    expect(server.requests[0]).toMatchObject({
      path: "/v1/images/generations",
      body: { model: "gpt-image-1", prompt: "a blue square", n: 2, size: "1024x1024", quality: "low" },
    });
  });

  it("downloads url images from a host the download allowlist names", async () => {
    const allowing = createOpenAIProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      imageDownload: { allowlist: parseHostAllowlist("127.0.0.1") },
    });
    const imageUrl = `${server.origin}/files/image-1.png`;
    server.queueResponse({
      body: { created: 1741570283, data: [{ url: imageUrl, revised_prompt: "A plain blue square." }] },
    });
    const result = await allowing.generateImage?.({ model: "dall-e-3", prompt: "blue", n: 1 });
    expect(result?.images).toEqual([
      { bytes: fakeImagePng, mediaType: "image/png", revisedPrompt: "A plain blue square." },
    ]);
    expect(result?.usage).toEqual({ images: 1 });
    expect(server.requests.map((received) => received.path)).toEqual([
      "/v1/images/generations",
      "/files/image-1.png",
    ]);
  });

  it("maps a content policy rejection to content_filtered", async () => {
    server.queueResponse({ status: 400, body: openAIErrorBodies.contentPolicyViolation });
    const error = await rejection(
      provider.generateImage?.({ model: "gpt-image-1", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "content_filtered", retryable: false });
  });
});

describe("editImage and createImageVariation", () => {
  const image = { bytes: renderPng({ width: 64, height: 64, seed: "source" }), mediaType: "image/png" };
  const mask = { bytes: renderPng({ width: 64, height: 64, seed: "mask" }), mediaType: "image/png" };

  it("sends an edit as multipart with the image, mask and fields, and decodes the images", async () => {
    const result = await provider.editImage?.({
      model: "gpt-image-1",
      prompt: "add a red hat",
      image,
      mask,
      n: 2,
      size: "1024x1024",
      quality: "low",
      providerOptions: { openai: { background: "opaque" } },
    });
    expect(result?.images).toEqual([
      { bytes: fakeImagePng, mediaType: "image/png" },
      { bytes: fakeImagePng, mediaType: "image/png" },
    ]);
    expect(result?.usage).toEqual({ images: 2, inputTokens: 50, outputTokens: 1056 });
    expect(result?.model).toBe("gpt-image-1");
    expect(result?.providerRequestId).toMatch(/^req_/);
    const received = server.requests[0];
    expect(received).toMatchObject({ method: "POST", path: "/v1/images/edits" });
    expect(received?.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(received?.body).toMatchObject({
      model: "gpt-image-1",
      prompt: "add a red hat",
      n: "2",
      size: "1024x1024",
      quality: "low",
      background: "opaque",
      image: { filename: "image.png", contentType: "image/png", bytes: image.bytes },
      mask: { filename: "mask.png", contentType: "image/png", bytes: mask.bytes },
    });
  });

  it("sends a variation as multipart with the image and no prompt", async () => {
    const jpeg = { bytes: Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 0x10), mediaType: "image/jpeg" };
    const result = await provider.createImageVariation?.({
      model: "dall-e-2",
      image: jpeg,
      n: 1,
      size: "256x256",
    });
    expect(result?.images).toEqual([{ bytes: fakeImagePng, mediaType: "image/png" }]);
    expect(result?.model).toBe("dall-e-2");
    const received = server.requests[0];
    expect(received).toMatchObject({ method: "POST", path: "/v1/images/variations" });
    expect(received?.body).toMatchObject({
      model: "dall-e-2",
      n: "1",
      size: "256x256",
      image: { filename: "image.jpg", contentType: "image/jpeg", bytes: jpeg.bytes },
    });
    expect(received?.body).not.toHaveProperty("prompt");
  });

  it("maps errors of an edit like any other call", async () => {
    server.queueResponse({ status: 400, body: openAIErrorBodies.contentPolicyViolation });
    const error = await rejection(
      provider.editImage?.({ model: "gpt-image-1", prompt: "x", image, n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "content_filtered", retryable: false, provider: "openai" });
  });
});

describe("healthCheck", () => {
  it("lists the models and times the call", async () => {
    const result = await provider.healthCheck();
    expect(result.ok).toBe(true);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(server.requests[0]).toMatchObject({ method: "GET", path: "/v1/models" });
  });

  it("reports not ok with the mapped code when the key is wrong", async () => {
    const wrongKey = createOpenAIProvider({ apiKey: "sk-wrong", baseURL: server.url });
    const result = await wrongKey.healthCheck();
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^auth_failed: /);
  });
});

describe("OpenAI-compatible endpoints", () => {
  it("serves another name on another base URL, reading its own providerOptions", async () => {
    const deepseek = createOpenAIProvider({ name: "deepseek", apiKey: API_KEY, baseURL: server.url });
    await deepseek.generateText(
      request({ model: "deepseek-chat", providerOptions: { deepseek: { seed: 1 }, openai: { seed: 2 } } }),
    );
    expect(server.requests[0]?.body).toMatchObject({ model: "deepseek-chat", seed: 1 });
    server.queueResponse({ status: 503, body: openAIErrorBodies.serverError });
    expect(await rejection(deepseek.generateText(request()))).toMatchObject({ provider: "deepseek" });
  });
});

describe("image URL downloads (SSRF guard)", () => {
  /** An image host the provider's answer points at: redirects, or streams an endless body. */
  let imageHost: ReturnType<typeof createServer>;
  let imageOrigin: string;
  const hostRequests: string[] = [];

  beforeAll(async () => {
    imageHost = createServer((incoming, outgoing) => {
      hostRequests.push(incoming.url ?? "");
      if (incoming.url === "/redirect") {
        outgoing.writeHead(302, {
          location: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        });
        outgoing.end();
        return;
      }
      if (incoming.url === "/slow") {
        outgoing.writeHead(200, { "content-type": "image/png" });
        outgoing.write(Buffer.alloc(16, 1)); // then nothing: a tarpit
        return;
      }
      // /huge: 64 KiB chunks without a content-length, until the client hangs up.
      outgoing.writeHead(200, { "content-type": "image/png" });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const write = () => {
        while (!outgoing.destroyed && outgoing.write(chunk));
        if (!outgoing.destroyed) outgoing.once("drain", write);
      };
      write();
    });
    await new Promise<void>((resolve) => imageHost.listen(0, "127.0.0.1", resolve));
    imageOrigin = `http://127.0.0.1:${(imageHost.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    imageHost.closeAllConnections();
    await new Promise((resolve) => imageHost.close(resolve));
  });

  beforeEach(() => {
    hostRequests.length = 0;
  });

  function answerWithUrl(url: string) {
    server.queueResponse({ body: { created: 1741570283, data: [{ url }] } });
  }

  it.each([
    ["loopback", () => `${server.origin}/files/secret.png`],
    ["metadata", () => "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
    ["private", () => "http://10.0.0.7/internal.png"],
  ])("refuses an image URL at a %s address without connecting to it", async (addressClass, url) => {
    answerWithUrl(url());
    const error = await rejection(
      provider.generateImage?.({ model: "dall-e-3", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: false });
    expect((error as Error).message).toContain(`a ${addressClass} address`);
    expect(server.requests.map((received) => received.path)).toEqual(["/v1/images/generations"]);
  });

  it("refuses a hostname that resolves to loopback", async () => {
    answerWithUrl(`http://localhost:${new URL(server.origin).port}/files/secret.png`);
    const error = await rejection(
      provider.generateImage?.({ model: "dall-e-3", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect((error as Error).message).toMatch(/localhost resolves to .*, a loopback address/);
    expect(server.requests.map((received) => received.path)).toEqual(["/v1/images/generations"]);
  });

  it("does not follow a redirect from an allowed host to the metadata service", async () => {
    const allowing = createOpenAIProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      imageDownload: { allowlist: parseHostAllowlist("127.0.0.1") },
    });
    answerWithUrl(`${imageOrigin}/redirect`);
    const error = await rejection(
      allowing.generateImage?.({ model: "dall-e-3", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: false, status: 302 });
    expect((error as Error).message).toContain("which is not followed");
    expect(hostRequests).toEqual(["/redirect"]);
  });

  it("cuts off an image body larger than the byte cap with a clear error", async () => {
    const capped = createOpenAIProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      imageDownload: { allowlist: parseHostAllowlist("127.0.0.1"), maxBytes: 1024 * 1024 },
    });
    answerWithUrl(`${imageOrigin}/huge`);
    const error = await rejection(
      capped.generateImage?.({ model: "dall-e-3", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: false });
    expect((error as Error).message).toContain("image URL is larger than the limit of 1048576 bytes");
  });

  it("gives up on an image download that outlasts its timeout", async () => {
    const impatient = createOpenAIProvider({
      apiKey: API_KEY,
      baseURL: server.url,
      imageDownload: { allowlist: parseHostAllowlist("127.0.0.1"), timeoutMs: 200 },
    });
    answerWithUrl(`${imageOrigin}/slow`);
    const error = await rejection(
      impatient.generateImage?.({ model: "dall-e-3", prompt: "x", n: 1 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ code: "timeout", retryable: true });
  });
});
