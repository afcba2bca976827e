import { describe, expect, it } from "vitest";
import type { TextGenerationRequest, TextStreamPart } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { createInMemoryFailureCounter } from "./failure-counter.ts";
import { createMockProvider } from "./mock-provider.ts";

function request(content: string, overrides: Partial<TextGenerationRequest> = {}): TextGenerationRequest {
  return { model: "mock-1", messages: [{ role: "user", content }], ...overrides };
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

describe("createMockProvider", () => {
  it("answers the same input with the same text, and different input with different text", async () => {
    const provider = createMockProvider();
    const first = await provider.generateText(request("hello there"));
    const again = await createMockProvider().generateText(request("hello there"));
    const other = await provider.generateText(request("something else"));
    expect(first.text).toBe(again.text);
    expect(first.text).toMatch(/^mock reply to: "hello there" \([0-9a-f]{8}\)$/);
    expect(other.text).not.toBe(first.text);
    expect(first).toMatchObject({ finishReason: "stop", model: "mock-1" });
    expect(first.usage).toEqual({ inputTokens: 3, outputTokens: Math.ceil(first.text.length / 4) });
  });

  it("truncates to maxTokens and reports finishReason length", async () => {
    const result = await createMockProvider().generateText(request("a long question", { maxTokens: 2 }));
    expect(result.text).toBe("mock rep");
    expect(result.finishReason).toBe("length");
    expect(result.usage.outputTokens).toBe(2);
  });

  it("stops before the first stop sequence", async () => {
    const result = await createMockProvider().generateText(request("hi", { stop: ["to:"] }));
    expect(result).toMatchObject({ text: "mock reply ", finishReason: "stop" });
  });

  it("fails the first failTimes calls for the same messages, then succeeds", async () => {
    const provider = createMockProvider({ failureCounter: createInMemoryFailureCounter() });
    const flaky = request("retry me", { providerOptions: { mock: { failTimes: 2, fail: "rate_limited" } } });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const error = await rejection(provider.generateText(flaky));
      expect(error).toMatchObject({ code: "rate_limited", retryable: true, status: 429, provider: "mock" });
    }
    await expect(provider.generateText(flaky)).resolves.toMatchObject({ finishReason: "stop" });
    // Other messages have their own count.
    const other = request("another", { providerOptions: flaky.providerOptions ?? {} });
    expect((await rejection(provider.generateText(other))).code).toBe("rate_limited");
  });

  it("throws the requested code with the taxonomy's retryability", async () => {
    const provider = createMockProvider();
    const error = await rejection(
      provider.generateText(request("x", { providerOptions: { mock: { fail: "credit_exhausted" } } })),
    );
    expect(error).toMatchObject({ code: "credit_exhausted", retryable: false, status: 402 });
  });

  it("rejects an unknown fail code as invalid_request", async () => {
    const provider = createMockProvider();
    const error = await rejection(
      provider.generateText(request("x", { providerOptions: { mock: { fail: "exploded" } } })),
    );
    expect(error.code).toBe("invalid_request");
  });

  it("fails with a retryable provider_unavailable at the configured failure rate", async () => {
    const provider = createMockProvider({ failureRate: 0.5, random: () => 0.25 });
    const error = await rejection(provider.generateText(request("x")));
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true, status: 503 });
    const lucky = createMockProvider({ failureRate: 0.5, random: () => 0.75 });
    await expect(lucky.generateText(request("x"))).resolves.toBeDefined();
  });

  it("rejects with canceled as soon as the signal aborts during the latency", async () => {
    const provider = createMockProvider({ latencyMs: 60_000 });
    const controller = new AbortController();
    const started = performance.now();
    const pending = provider.generateText(request("slow", { signal: controller.signal }));
    controller.abort();
    const error = await rejection(pending);
    expect(error.code).toBe("canceled");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("lets a request override the latency", async () => {
    const provider = createMockProvider({ latencyMs: 60_000 });
    await expect(
      provider.generateText(request("fast", { providerOptions: { mock: { latencyMs: 0 } } })),
    ).resolves.toBeDefined();
  });

  it("streams deltas that add up to generateText's text, then a finish with usage", async () => {
    const provider = createMockProvider();
    const input = request("stream this please");
    const expected = await provider.generateText(input);
    const parts = await collect(provider.streamText(input));
    const deltas = parts.filter((part) => part.type === "text-delta");
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.map((part) => part.delta).join("")).toBe(expected.text);
    expect(parts.at(-1)).toEqual({
      type: "finish",
      finishReason: "stop",
      usage: expected.usage,
      model: "mock-1",
      providerRequestId: expected.providerRequestId,
    });
  });

  it("reads per-provider options under its own name", async () => {
    const provider = createMockProvider({ name: "mock-primary" });
    const error = await rejection(
      provider.generateText(request("x", { providerOptions: { "mock-primary": { fail: "timeout" } } })),
    );
    expect(error).toMatchObject({ code: "timeout", provider: "mock-primary", retryable: true });
  });

  it("reports healthy", async () => {
    await expect(createMockProvider().healthCheck()).resolves.toMatchObject({ ok: true });
  });
});
