import { describe, expect, it } from "vitest";
import { imageDimensions } from "../image-dimensions.ts";
import type {
  ImageEditRequest,
  ImageGenerationRequest,
  ImageVariationRequest,
  TextGenerationRequest,
  TextStreamPart,
} from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { createInMemoryFailureCounter } from "./failure-counter.ts";
import { createMockProvider } from "./mock-provider.ts";
import { renderPng } from "./render-png.ts";

function request(content: string, overrides: Partial<TextGenerationRequest> = {}): TextGenerationRequest {
  return { model: "mock-1", messages: [{ role: "user", content }], ...overrides };
}

function imageRequest(
  prompt: string,
  overrides: Partial<ImageGenerationRequest> = {},
): ImageGenerationRequest {
  return { model: "mock-1", prompt, n: 1, ...overrides };
}

/** The mock always implements generateImage; this narrows the optional method for the tests. */
function generateImage(provider: ReturnType<typeof createMockProvider>, input: ImageGenerationRequest) {
  if (provider.generateImage === undefined) throw new Error("the mock provider should make images");
  return provider.generateImage(input);
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
    // The input is counted as the reservation bounds it: 11 bytes plus the message and request overheads.
    expect(first.usage).toEqual({ inputTokens: 11 + 8 + 8, outputTokens: Math.ceil(first.text.length / 4) });
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

  it("spaces streamed deltas by deltaDelayMs", async () => {
    const provider = createMockProvider();
    const input = request("stream this slowly please", { providerOptions: { mock: { deltaDelayMs: 30 } } });
    const arrivals: number[] = [];
    for await (const part of provider.streamText(input)) {
      if (part.type === "text-delta") arrivals.push(performance.now());
    }
    expect(arrivals.length).toBeGreaterThan(2);
    // Timers may fire a little early; allow a millisecond of slack per gap.
    for (let index = 1; index < arrivals.length; index++) {
      expect(arrivals[index]! - arrivals[index - 1]!).toBeGreaterThanOrEqual(29);
    }
  });

  it("breaks the first streamBreaks streams halfway with a retryable error, then streams whole", async () => {
    const provider = createMockProvider();
    const input = request("break my stream once", { providerOptions: { mock: { streamBreaks: 1 } } });
    const expected = await provider.generateText(input);
    const received: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const part of provider.streamText(input)) {
          if (part.type === "text-delta") received.push(part.delta);
        }
      })(),
    );
    expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
    expect(received.length).toBeGreaterThan(0);
    expect(expected.text.startsWith(received.join(""))).toBe(true);
    expect(received.join("")).not.toBe(expected.text);
    const parts = await collect(provider.streamText(input));
    expect(
      parts
        .filter((part) => part.type === "text-delta")
        .map((part) => part.delta)
        .join(""),
    ).toBe(expected.text);
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

  describe("generateImage", () => {
    it("returns n distinct PNGs of the requested size, with the prompt as revisedPrompt", async () => {
      const result = await generateImage(
        createMockProvider(),
        imageRequest("a lighthouse at dusk", { n: 3, size: "512x384" }),
      );
      expect(result.images).toHaveLength(3);
      for (const image of result.images) {
        expect(image).toMatchObject({ mediaType: "image/png", revisedPrompt: "a lighthouse at dusk" });
        expect(imageDimensions(image.bytes)).toEqual({ width: 512, height: 384, mediaType: "image/png" });
      }
      const distinct = new Set(result.images.map((image) => Buffer.from(image.bytes).toString("base64")));
      expect(distinct.size).toBe(3);
      expect(result.usage).toEqual({ images: 3 });
      expect(result.model).toBe("mock-1");
      expect(result.providerRequestId).toMatch(/^mock_[0-9a-f]{16}$/);
    });

    it("draws the same images for the same prompt, and different ones for another prompt", async () => {
      const first = await generateImage(
        createMockProvider(),
        imageRequest("a red fox", { n: 2, size: "256x256" }),
      );
      const again = await generateImage(
        createMockProvider(),
        imageRequest("a red fox", { n: 2, size: "256x256" }),
      );
      const other = await generateImage(
        createMockProvider(),
        imageRequest("a blue fox", { n: 1, size: "256x256" }),
      );
      expect(again.images.map((image) => image.bytes)).toEqual(first.images.map((image) => image.bytes));
      expect(other.images[0]?.bytes).not.toEqual(first.images[0]?.bytes);
    });

    it("draws 1024x1024 when the request names no size, under the default model when it names none", async () => {
      const result = await generateImage(
        createMockProvider({ defaultModel: "mock-art" }),
        imageRequest("x", { model: "" }),
      );
      expect(imageDimensions(result.images[0]!.bytes)).toMatchObject({ width: 1024, height: 1024 });
      expect(result.model).toBe("mock-art");
    });

    it.each(["1024", "1024x", "1024X1024", "255x512", "512x2049", "auto", " 512x512", "512.5x512"])(
      "rejects the size %j as invalid_request naming the format",
      async (size) => {
        const error = await rejection(generateImage(createMockProvider(), imageRequest("x", { size })));
        expect(error).toMatchObject({ code: "invalid_request", retryable: false, provider: "mock" });
        expect(error.message).toContain('"WIDTHxHEIGHT"');
        expect(error.message).toContain("256..2048");
      },
    );

    it.each([0, -1, 1.5, 11])("rejects n = %s as invalid_request", async (n) => {
      const error = await rejection(generateImage(createMockProvider(), imageRequest("x", { n })));
      expect(error.code).toBe("invalid_request");
    });

    it("throws the requested failure, and fails failTimes calls before succeeding", async () => {
      const provider = createMockProvider();
      const failing = imageRequest("x", {
        size: "256x256",
        providerOptions: { mock: { fail: "content_filtered" } },
      });
      expect(await rejection(generateImage(provider, failing))).toMatchObject({
        code: "content_filtered",
        retryable: false,
        status: 400,
      });

      const flaky = imageRequest("y", { size: "256x256", providerOptions: { mock: { failTimes: 1 } } });
      expect((await rejection(generateImage(provider, flaky))).code).toBe("provider_unavailable");
      await expect(generateImage(provider, flaky)).resolves.toMatchObject({ usage: { images: 1 } });
    });

    it("fails at the configured failure rate", async () => {
      const provider = createMockProvider({ failureRate: 1, random: () => 0 });
      const error = await rejection(generateImage(provider, imageRequest("x", { size: "256x256" })));
      expect(error).toMatchObject({ code: "provider_unavailable", retryable: true });
    });

    it("waits the latency and rejects with canceled when the signal aborts during it", async () => {
      const provider = createMockProvider({ latencyMs: 60_000 });
      const controller = new AbortController();
      const started = performance.now();
      const pending = generateImage(provider, imageRequest("slow", { signal: controller.signal }));
      controller.abort();
      expect((await rejection(pending)).code).toBe("canceled");
      expect(performance.now() - started).toBeLessThan(1_000);
      await expect(
        generateImage(
          provider,
          imageRequest("fast", { size: "256x256", providerOptions: { mock: { latencyMs: 0 } } }),
        ),
      ).resolves.toBeDefined();
    });
  });

  describe("editImage and createImageVariation", () => {
    const source = renderPng({ width: 300, height: 260, seed: "source" });
    const otherSource = renderPng({ width: 300, height: 260, seed: "another source" });
    const mask = renderPng({ width: 300, height: 260, seed: "mask" });

    function edit(input: Omit<ImageEditRequest, "model" | "n"> & { n?: number }) {
      const provider = createMockProvider();
      if (provider.editImage === undefined) throw new Error("the mock provider should edit images");
      return provider.editImage({ model: "mock-1", n: 1, ...input });
    }

    function vary(input: Omit<ImageVariationRequest, "model" | "n"> & { n?: number }) {
      const provider = createMockProvider();
      if (provider.createImageVariation === undefined)
        throw new Error("the mock provider should vary images");
      return provider.createImageVariation({ model: "mock-1", n: 1, ...input });
    }

    it("edits into PNGs of the source's size, seeded by the prompt and the sources", async () => {
      const image = { bytes: source, mediaType: "image/png" };
      const result = await edit({
        prompt: "add a moon",
        image,
        mask: { bytes: mask, mediaType: "image/png" },
        n: 2,
      });
      expect(result.images).toHaveLength(2);
      expect(result.images[0]).toMatchObject({ mediaType: "image/png", revisedPrompt: "add a moon" });
      expect(imageDimensions(result.images[0]!.bytes)).toEqual({
        width: 300,
        height: 260,
        mediaType: "image/png",
      });
      expect(result.usage).toEqual({ images: 2 });

      const again = await edit({
        prompt: "add a moon",
        image,
        mask: { bytes: mask, mediaType: "image/png" },
        n: 2,
      });
      expect(again.images.map((each) => each.bytes)).toEqual(result.images.map((each) => each.bytes));
      const withoutMask = await edit({ prompt: "add a moon", image });
      const otherImage = await edit({
        prompt: "add a moon",
        image: { bytes: otherSource, mediaType: "image/png" },
      });
      const otherPrompt = await edit({ prompt: "add a sun", image });
      const generated = await generateImage(
        createMockProvider(),
        imageRequest("add a moon", { size: "300x260" }),
      );
      const pictures = [result, withoutMask, otherImage, otherPrompt, generated].map((each) =>
        Buffer.from(each.images[0]!.bytes).toString("base64"),
      );
      expect(new Set(pictures).size).toBe(pictures.length);
    });

    it("draws the requested size, and the default one for a source too small to draw", async () => {
      const image = { bytes: renderPng({ width: 16, height: 16, seed: "tiny" }), mediaType: "image/png" };
      const sized = await edit({ prompt: "x", image, size: "512x256" });
      expect(imageDimensions(sized.images[0]!.bytes)).toMatchObject({ width: 512, height: 256 });
      const fallback = await vary({ image });
      expect(imageDimensions(fallback.images[0]!.bytes)).toMatchObject({ width: 1024, height: 1024 });
    });

    it("makes variations without a prompt, the same for the same source and different for another", async () => {
      const first = await vary({ image: { bytes: source, mediaType: "image/png" }, n: 2 });
      const again = await vary({ image: { bytes: source, mediaType: "image/png" }, n: 2 });
      const other = await vary({ image: { bytes: otherSource, mediaType: "image/png" } });
      expect(first.images).toHaveLength(2);
      expect(first.images[0]).not.toHaveProperty("revisedPrompt");
      expect(again.images.map((each) => each.bytes)).toEqual(first.images.map((each) => each.bytes));
      expect(other.images[0]?.bytes).not.toEqual(first.images[0]?.bytes);
    });

    it("simulates failures on edits like on generations", async () => {
      const error = await rejection(
        edit({
          prompt: "x",
          image: { bytes: source, mediaType: "image/png" },
          providerOptions: { mock: { fail: "content_filtered" } },
        }),
      );
      expect(error).toMatchObject({ code: "content_filtered", retryable: false });
    });
  });
});
