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
});
