// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { describe, expect, it } from "vitest";
import { parseProvidersFile } from "./parse-providers-file.ts";
import {
  EMPTY_PROVIDER_OVERLAY,
  MASKED_SECRET,
  maskProviderSecrets,
  mergeProviderLayers,
  type ProviderConfigOverlay,
  validateMergedProviders,
} from "./provider-layers.ts";

const FILE = {
  version: 1,
  providers: [
    {
      name: "openai",
      type: "openai",
      keys: [{ apiKey: "sk-file-key-0123456789" }],
      models: [{ id: "gpt-4o-mini", price: { input: 150_000, output: 600_000 } }],
    },
    { name: "mock", type: "mock" },
  ],
};

function overlay(changes: Partial<ProviderConfigOverlay>): ProviderConfigOverlay {
  return { ...EMPTY_PROVIDER_OVERLAY, version: 1, ...changes };
}

describe("mergeProviderLayers", () => {
  it("replaces a file provider of the same name whole and adds the others after the file's", () => {
    const merged = validateMergedProviders(
      FILE,
      overlay({
        providers: [
          { name: "openai", type: "mock", defaultModel: "replaced" },
          { name: "extra", type: "mock" },
        ],
      }),
    );
    expect(merged.providers.map((provider) => [provider.name, provider.type])).toEqual([
      ["mock", "mock"],
      ["openai", "mock"],
      ["extra", "mock"],
    ]);
    // The file's implicit default route still goes to the file's first provider.
    expect(merged.defaultRoute).toBe("default");
    expect(merged.routes).toEqual([
      {
        name: "default",
        strategy: "priority",
        targets: [{ provider: "openai", model: "replaced", weight: 1, tier: 0 }],
      },
    ]);
  });

  it("hides a file provider when the database disables one of that name", () => {
    const merged = validateMergedProviders(
      { ...FILE, routes: [{ name: "main", targets: [{ provider: "mock" }] }] },
      overlay({ disabledProviders: ["openai"] }),
    );
    expect(merged.providers.map((provider) => provider.name)).toEqual(["mock"]);
  });

  it("keeps the file's default route when the database adds one", () => {
    const merged = validateMergedProviders(
      FILE,
      overlay({ routes: [{ name: "cheap", strategy: "cost", targets: [{ provider: "mock" }] }] }),
    );
    expect(merged.defaultRoute).toBe("default");
    expect(merged.routes.map((route) => route.name)).toEqual(["default", "cheap"]);
  });

  it("returns the file untouched with an empty overlay", () => {
    expect(mergeProviderLayers(FILE, EMPTY_PROVIDER_OVERLAY)).toBe(FILE);
  });

  it("refuses what the file refuses, with the file's message, located by name", () => {
    const asFile = () =>
      parseProvidersFile(
        {
          ...FILE,
          providers: [
            ...FILE.providers,
            { name: "acme", type: "openai", keys: [{ apiKey: "x" }], models: [{ id: "m" }] },
          ],
        },
        {},
      );
    expect(asFile).toThrow("providers[2].models[0].price: a model needs a price or zeroCost: true");
    expect(() =>
      validateMergedProviders(
        FILE,
        overlay({
          providers: [{ name: "acme", type: "openai", keys: [{ apiKey: "x" }], models: [{ id: "m" }] }],
        }),
      ),
    ).toThrow("providers[acme].models[0].price: a model needs a price or zeroCost: true");
  });

  it("never expands ${ENV} references in stored values", () => {
    const merged = validateMergedProviders(
      FILE,
      overlay({
        providers: [
          {
            name: "acme",
            type: "openai-compatible",
            baseUrl: "https://example.com/v1",
            options: { headers: { "x-leak": "${OPENAI_API_KEY}" } },
            models: [{ id: "m", zeroCost: true }],
          },
        ],
      }),
    );
    const acme = merged.providers.find((provider) => provider.name === "acme");
    expect(acme?.options).toEqual({ headers: { "x-leak": "${OPENAI_API_KEY}" } });
  });
});

describe("maskProviderSecrets", () => {
  it("masks every apiKey and header value and keeps the rest valid", () => {
    const data = {
      ...FILE,
      providers: [
        { ...FILE.providers[0], options: { headers: { authorization: "Bearer secret-header" } } },
        FILE.providers[1],
      ],
    };
    const masked = maskProviderSecrets(data);
    const text = JSON.stringify(masked);
    expect(text).not.toContain("sk-file-key");
    expect(text).not.toContain("secret-header");
    expect(text).toContain(MASKED_SECRET);
    expect(() => validateMergedProviders(masked, EMPTY_PROVIDER_OVERLAY)).not.toThrow();
  });
});
