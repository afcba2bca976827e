import { describe, expect, it } from "vitest";
import { buildRouterConfig } from "./build-router-config.ts";
import { MOCK_IMAGE_OPTIONS } from "./builtin-models.ts";
import { defaultProvidersFile } from "./default-providers-file.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";

function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProvidersConfigError);
    return (error as ProvidersConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  throw new Error("expected a ProvidersConfigError");
}

describe("defaultProvidersFile", () => {
  it("offers only the mock, free, when only the mock is configured", () => {
    const file = defaultProvidersFile({
      defaultProvider: "mock",
      mock: { latencyMs: 250, failureRate: 0.1 },
    });
    expect(file.providers).toEqual([
      {
        name: "mock",
        type: "mock",
        acceptsUserKeys: false,
        keys: [{ id: "default", priority: 1 }],
        defaultModel: "mock-1",
        models: [
          { id: "mock-1", capabilities: ["text", "image"], zeroCost: true, image: MOCK_IMAGE_OPTIONS },
        ],
        options: { latencyMs: 250, failureRate: 0.1 },
      },
    ]);
    expect(file.routes).toEqual([
      {
        name: "default",
        strategy: "priority",
        targets: [{ provider: "mock", model: "mock-1", weight: 1, tier: 0 }],
      },
    ]);
    expect(file.defaultRoute).toBe("default");

    const config = buildRouterConfig(file, { source: "environment" });
    expect(
      config.prices.costMicroUsd({ provider: "mock", model: "mock-1", usage: { inputTokens: 5 } }),
    ).toEqual({
      costMicroUsd: 0,
      priced: true,
    });
  });

  it("offers OpenAI and Anthropic with one key each and their built-in priced models", () => {
    const file = defaultProvidersFile({
      defaultProvider: "anthropic",
      openai: {
        apiKey: "sk-openai-0123456789",
        baseUrl: "https://proxy.example.com/v1",
        defaultModel: "gpt-4o",
      },
      anthropic: { apiKey: "sk-ant-0123456789abc" },
    });
    expect(file.providers.map((provider) => [provider.name, provider.defaultModel, provider.keys])).toEqual([
      ["openai", "gpt-4o", [{ id: "default", apiKey: "sk-openai-0123456789", priority: 1 }]],
      ["anthropic", "claude-sonnet-4-5", [{ id: "default", apiKey: "sk-ant-0123456789abc", priority: 1 }]],
    ]);
    expect(file.providers[0]?.baseUrl).toBe("https://proxy.example.com/v1");
    expect(file.providers[0]?.models.map((model) => `${model.id}:${model.capabilities.join("+")}`)).toEqual([
      "gpt-4o-mini:text",
      "gpt-4o:text",
      "gpt-4.1-mini:text",
      "gpt-image-1:image",
      "dall-e-3:image",
    ]);
    expect(file.providers[1]?.models.map((model) => model.id)).toEqual([
      "claude-sonnet-4-5",
      "claude-haiku-4-5",
      "claude-opus-4-1",
    ]);
    expect(file.routes[0]?.targets).toEqual([
      { provider: "anthropic", model: "claude-sonnet-4-5", weight: 1, tier: 0 },
    ]);

    const config = buildRouterConfig(file, { source: "environment" });
    expect(config.providers.get("anthropic")?.keys[0]?.hint).toBe("sk-…9abc");
    expect(config.prices.find("anthropic", "claude-haiku-4-5")).toEqual({
      provider: "anthropic",
      model: "claude-haiku-4-5",
      inputPerMillionMicroUsd: 1_000_000,
      cachedInputPerMillionMicroUsd: 100_000,
      outputPerMillionMicroUsd: 5_000_000,
    });
    expect(config.prices.find("openai", "gpt-image-1")?.perImageMicroUsd).toBe(42_000);
    expect(config.priceVersion).toMatch(/^sha256:[0-9a-f]{12}$/);
  });

  it("prices a gemini default model and a dated snapshot of a built-in one", () => {
    const file = defaultProvidersFile({
      defaultProvider: "gemini",
      gemini: { apiKey: "AIza-0123456789" },
      openai: { apiKey: "sk-x-0123456789", defaultModel: "gpt-4o-mini-2024-07-18" },
    });
    expect(file.providers.find((provider) => provider.name === "gemini")?.defaultModel).toBe(
      "gemini-2.5-flash",
    );
    const openai = file.providers.find((provider) => provider.name === "openai");
    expect(openai?.models.find((model) => model.id === "gpt-4o-mini-2024-07-18")?.price).toEqual({
      input: 150_000,
      cachedInput: 75_000,
      output: 600_000,
    });
  });

  it("refuses a default model without a built-in price (pricing fails closed)", () => {
    expect(
      issuesOf(() =>
        defaultProvidersFile({
          defaultProvider: "openai",
          openai: { apiKey: "sk-secret-0123456789", defaultModel: "gpt-5" },
        }),
      ),
    ).toEqual([
      'openai.defaultModel: model "gpt-5" has no built-in price; configure openai in a providers file and give the model a price',
    ]);
  });

  it("refuses a default provider that is not configured", () => {
    expect(issuesOf(() => defaultProvidersFile({ defaultProvider: "openai", mock: {} }))).toEqual([
      'defaultProvider: provider "openai" is not configured (give its settings, e.g. its API key)',
    ]);
  });

  it("validates the settings like a file, without showing the key", () => {
    let message = "";
    try {
      defaultProvidersFile({
        defaultProvider: "openai",
        openai: { apiKey: "sk-secret-0123456789", baseUrl: "not a url", timeoutMs: -1 },
      });
    } catch (error) {
      expect(error).toBeInstanceOf(ProvidersConfigError);
      message = (error as Error).message;
    }
    expect(message.split("\n")).toEqual([
      "Invalid providers configuration (environment):",
      "  openai.timeoutMs: must be greater than 0",
      "  openai.baseUrl: must be an http:// or https:// URL",
    ]);
    expect(message).not.toContain("sk-secret");
  });
});
