import { describe, expect, it } from "vitest";
import { createPriceCatalog } from "./price-catalog.ts";

describe("createPriceCatalog", () => {
  const catalog = createPriceCatalog();

  it("prices gpt-4o-mini in micro-USD, rounding up", () => {
    // 1000 × 0.15 + 500 × 0.60 = 450 micro-USD exactly.
    expect(
      catalog.costMicroUsd({
        provider: "openai",
        model: "gpt-4o-mini",
        usage: { inputTokens: 1000, outputTokens: 500 },
      }),
    ).toEqual({ costMicroUsd: 450, priced: true });
    // One input token costs 0.15 micro-USD and is charged as 1.
    expect(
      catalog.costMicroUsd({ provider: "openai", model: "gpt-4o-mini", usage: { inputTokens: 1 } }),
    ).toEqual({ costMicroUsd: 1, priced: true });
  });

  it("charges cached input tokens at the cached price", () => {
    // 600 uncached × 2.5 + 400 cached × 1.25 + 100 × 10 = 1500 + 500 + 1000.
    const cost = catalog.costMicroUsd({
      provider: "openai",
      model: "gpt-4o",
      usage: { inputTokens: 1000, cachedInputTokens: 400, outputTokens: 100 },
    });
    expect(cost).toEqual({ costMicroUsd: 3000, priced: true });
  });

  it("prices a dated snapshot like its alias", () => {
    const cost = catalog.costMicroUsd({
      provider: "openai",
      model: "gpt-4o-mini-2024-07-18",
      usage: { inputTokens: 1_000_000 },
    });
    expect(cost).toEqual({ costMicroUsd: 150_000, priced: true });
  });

  it("returns 0 and priced false for an unknown model", () => {
    expect(catalog.costMicroUsd({ provider: "openai", model: "gpt-9", usage: { inputTokens: 10 } })).toEqual({
      costMicroUsd: 0,
      priced: false,
    });
  });

  it("prices the mock at 0", () => {
    expect(
      catalog.costMicroUsd({
        provider: "mock",
        model: "mock-1",
        usage: { inputTokens: 10, outputTokens: 10 },
      }),
    ).toEqual({ costMicroUsd: 0, priced: true });
  });

  it("lets configured entries override the defaults", () => {
    const configured = createPriceCatalog([
      {
        provider: "openai",
        model: "gpt-4o-mini",
        inputPerMillionMicroUsd: 1_000_000,
        outputPerMillionMicroUsd: 0,
      },
    ]);
    expect(
      configured.costMicroUsd({ provider: "openai", model: "gpt-4o-mini", usage: { inputTokens: 3 } }),
    ).toEqual({ costMicroUsd: 3, priced: true });
  });

  it("refuses a negative price", () => {
    expect(() =>
      createPriceCatalog([
        { provider: "x", model: "y", inputPerMillionMicroUsd: -1, outputPerMillionMicroUsd: 0 },
      ]),
    ).toThrow(/inputPerMillionMicroUsd/);
  });

  it("is versioned builtin unless given a version", () => {
    expect(catalog.version).toBe("builtin");
    expect(createPriceCatalog([], { includeDefaults: false, version: "2026-11-01" }).version).toBe(
      "2026-11-01",
    );
  });

  it("prices the built-in Anthropic and Gemini models, and image models per image", () => {
    // 1000 × 3 + 1000 × 15 micro-USD.
    expect(
      catalog.costMicroUsd({
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        usage: { inputTokens: 1000, outputTokens: 1000 },
      }),
    ).toEqual({ costMicroUsd: 18_000, priced: true });
    expect(
      catalog.costMicroUsd({ provider: "gemini", model: "gemini-2.5-flash-image", usage: { images: 2 } }),
    ).toEqual({ costMicroUsd: 78_000, priced: true });
    expect(catalog.costMicroUsd({ provider: "openai", model: "gpt-image-1", usage: { images: 1 } })).toEqual({
      costMicroUsd: 42_000,
      priced: true,
    });
  });

  it("prices the built-in gpt-image-1 and dall-e-3 by size and quality, per image otherwise", () => {
    const price = (model: string, size?: string, quality?: string) =>
      catalog.imagePrice("openai", model, {
        ...(size === undefined ? {} : { size }),
        ...(quality === undefined ? {} : { quality }),
      });
    expect(price("gpt-image-1", "1024x1024", "low")).toBe(11_000);
    expect(price("gpt-image-1", "1536x1024", "medium")).toBe(63_000);
    expect(price("gpt-image-1", "1024x1536", "high")).toBe(250_000);
    expect(price("gpt-image-1", "1024x1024", "auto")).toBe(42_000);
    expect(price("gpt-image-1")).toBe(42_000);
    expect(price("dall-e-3", "1024x1024", "standard")).toBe(40_000);
    expect(price("dall-e-3", "1792x1024", "hd")).toBe(120_000);
    // Without a quality dall-e-3 makes a standard image.
    expect(price("dall-e-3", "1024x1792")).toBe(80_000);
    expect(price("dall-e-3")).toBe(40_000);
    expect(
      catalog.costMicroUsd({
        provider: "openai",
        model: "gpt-image-1",
        usage: { images: 2 },
        image: { size: "1536x1024", quality: "high" },
      }),
    ).toEqual({ costMicroUsd: 500_000, priced: true });
  });

  it("starts empty without the defaults", () => {
    const empty = createPriceCatalog([], { includeDefaults: false });
    expect(empty.entries()).toEqual([]);
    expect(empty.find("mock", "mock-1")).toBeUndefined();
  });
});

describe("image prices by size and quality", () => {
  const catalog = createPriceCatalog(
    [
      {
        provider: "openai",
        model: "image-model",
        inputPerMillionMicroUsd: 0,
        outputPerMillionMicroUsd: 0,
        perImageMicroUsd: 1_000,
        imagePricesMicroUsd: {
          "1024x1024/high": 100,
          "1024x1024": 200,
          "*/high": 300,
          "512x512/low": 400,
        },
      },
      {
        provider: "openai",
        model: "table-only",
        inputPerMillionMicroUsd: 0,
        outputPerMillionMicroUsd: 0,
        imagePricesMicroUsd: { "1024x1024/low": 10, "*": 20 },
      },
      {
        provider: "openai",
        model: "exact-only",
        inputPerMillionMicroUsd: 0,
        outputPerMillionMicroUsd: 0,
        imagePricesMicroUsd: { "1024x1024/low": 10 },
      },
      { provider: "openai", model: "text-model", inputPerMillionMicroUsd: 1, outputPerMillionMicroUsd: 1 },
    ],
    { includeDefaults: false },
  );
  const price = (model: string, image?: { size?: string; quality?: string }) =>
    catalog.imagePrice("openai", model, image);

  it("takes size/quality first, then the size, then */quality, then perImage", () => {
    expect(price("image-model", { size: "1024x1024", quality: "high" })).toBe(100);
    expect(price("image-model", { size: "1024x1024", quality: "low" })).toBe(200);
    expect(price("image-model", { size: "1024x1024" })).toBe(200);
    expect(price("image-model", { size: "1536x1024", quality: "high" })).toBe(300);
    expect(price("image-model", { quality: "high" })).toBe(300);
    expect(price("image-model", { size: "1536x1024", quality: "low" })).toBe(1_000);
    expect(price("image-model", { size: "512x512" })).toBe(1_000);
    expect(price("image-model")).toBe(1_000);
  });

  it("uses a * key after */quality and before perImage", () => {
    expect(price("table-only", { size: "1024x1024", quality: "low" })).toBe(10);
    expect(price("table-only", { size: "1024x1024", quality: "high" })).toBe(20);
    expect(price("table-only")).toBe(20);
  });

  it("matches size and quality trimmed and in any case", () => {
    expect(price("image-model", { size: " 1024X1024 ", quality: "HIGH" })).toBe(100);
    expect(price("image-model", { size: "", quality: "high" })).toBe(300);
  });

  it("has no image price for an unknown model, a model priced by tokens, or an image the table does not cover", () => {
    expect(price("unknown", { size: "1024x1024" })).toBeUndefined();
    expect(price("text-model")).toBeUndefined();
    expect(price("exact-only", { size: "1024x1024", quality: "high" })).toBeUndefined();
    expect(price("exact-only", { size: "1024x1024" })).toBeUndefined();
    expect(price("exact-only", { size: "constructor", quality: "low" })).toBeUndefined();
  });

  it("charges every image the price its size and quality pick, and 0 when none applies", () => {
    const cost = (model: string, images: number, image?: { size?: string; quality?: string }) =>
      catalog.costMicroUsd({
        provider: "openai",
        model,
        usage: { images },
        ...(image === undefined ? {} : { image }),
      });
    expect(cost("image-model", 3, { size: "1024x1024", quality: "high" })).toEqual({
      costMicroUsd: 300,
      priced: true,
    });
    expect(cost("image-model", 2)).toEqual({ costMicroUsd: 2_000, priced: true });
    expect(cost("exact-only", 2, { size: "512x512" })).toEqual({ costMicroUsd: 0, priced: true });
  });

  it("refuses a malformed key or a negative image price", () => {
    const entry = (imagePricesMicroUsd: Record<string, number>) => ({
      provider: "x",
      model: "y",
      inputPerMillionMicroUsd: 0,
      outputPerMillionMicroUsd: 0,
      imagePricesMicroUsd,
    });
    for (const badKey of ["big", "1024x1024/High", "1024*1024", "*/", "0x1024", "1024x1024/low/extra"]) {
      expect(() => createPriceCatalog([entry({ [badKey]: 1 })])).toThrow(
        `imagePricesMicroUsd key ${JSON.stringify(badKey)}`,
      );
    }
    expect(() => createPriceCatalog([entry({ "1024x1024/low": -1 })])).toThrow(
      'imagePricesMicroUsd["1024x1024/low"] must be a non-negative number',
    );
    expect(() => createPriceCatalog([entry({ "*": 0, "*/hd": 1, "1792x1024": 2 })])).not.toThrow();
  });
});

describe("batch prices (economy tier)", () => {
  it("charges half the online price by default, rounded up once", () => {
    const catalog = createPriceCatalog([
      { provider: "p", model: "m", inputPerMillionMicroUsd: 150_000, outputPerMillionMicroUsd: 600_000 },
    ]);
    const usage = { inputTokens: 1_000, outputTokens: 333 };
    expect(catalog.costMicroUsd({ provider: "p", model: "m", usage }).costMicroUsd).toBe(350);
    // 1,000 × 75,000 + 333 × 300,000 = 174,900,000 → 174.9 → 175
    expect(catalog.costMicroUsd({ provider: "p", model: "m", usage, tier: "batch" }).costMicroUsd).toBe(175);
  });

  it("uses stated batch prices when the entry has them", () => {
    const catalog = createPriceCatalog([
      {
        provider: "p",
        model: "m",
        inputPerMillionMicroUsd: 1_000_000,
        outputPerMillionMicroUsd: 2_000_000,
        batchInputPerMillionMicroUsd: 100_000,
        batchOutputPerMillionMicroUsd: 300_000,
      },
    ]);
    const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
    expect(catalog.costMicroUsd({ provider: "p", model: "m", usage, tier: "batch" }).costMicroUsd).toBe(
      400_000,
    );
  });

  it("refuses a negative batch price", () => {
    expect(() =>
      createPriceCatalog([
        {
          provider: "p",
          model: "m",
          inputPerMillionMicroUsd: 1,
          outputPerMillionMicroUsd: 1,
          batchInputPerMillionMicroUsd: -1,
        },
      ]),
    ).toThrow(/batchInputPerMillionMicroUsd/);
  });
});
