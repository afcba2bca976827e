// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createInMemoryFailureCounter } from "../mock/failure-counter.ts";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "../openai/testing/fake-openai-server.ts";
import { ProviderError } from "../provider-error.ts";
import { EXAMPLE_ENV, EXAMPLE_PATH } from "./__fixtures__/example-env.ts";
import { apiKeyHint } from "./api-key-hint.ts";
import { buildRouterConfig } from "./build-router-config.ts";
import { MOCK_IMAGE_OPTIONS } from "./builtin-models.ts";
import { defaultProvidersFile } from "./default-providers-file.ts";
import { parseProvidersText } from "./load-providers-file.ts";
import { loadRouterConfig } from "./load-router-config.ts";
import { parseProvidersFile } from "./parse-providers-file.ts";
import { DEFAULT_BREAKER_POLICY } from "./providers-file.ts";
import { shortHash } from "./short-hash.ts";

let server: FakeOpenAIServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("buildRouterConfig", () => {
  it("builds the example: providers, keys with limits, models, prices, routes and policies", async () => {
    const source = await readFile(EXAMPLE_PATH, "utf8");
    const config = buildRouterConfig(parseProvidersText(source, EXAMPLE_PATH, EXAMPLE_ENV), { source });

    expect(config.version).toBe(shortHash(source));
    expect(config.version).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(config.priceVersion).toBe("2026-11-01");
    expect(config.prices.version).toBe("2026-11-01");
    expect([...config.providers.keys()]).toEqual([
      "openai",
      "deepseek",
      "ollama",
      "anthropic",
      "gemini",
      "mock",
    ]);

    const openai = config.providers.get("openai")!;
    expect(openai.type).toBe("openai");
    expect(openai.defaultModel).toBe("gpt-4o-mini");
    expect(openai.keys.map(({ id, priority, limits, hint }) => ({ id, priority, limits, hint }))).toEqual([
      { id: "primary", priority: 1, limits: { rpm: 500, tpm: 200_000, rpd: 10_000 }, hint: "sk-…0001" },
      { id: "backup", priority: 2, limits: {}, hint: "sk-…0002" },
    ]);
    expect(openai.keys.map((key) => [key.client.name, key.client.defaultModel])).toEqual([
      ["openai", "gpt-4o-mini"],
      ["openai", "gpt-4o-mini"],
    ]);
    expect(openai.keys[0]?.client).not.toBe(openai.keys[1]?.client);
    expect(openai.models.get("gpt-4o-mini")).toEqual({
      id: "gpt-4o-mini",
      capabilities: ["text"],
      contextWindow: 128_000,
      maxOutputTokens: 16_384,
      zeroCost: false,
    });
    expect(openai.models.get("gpt-image-1")).toEqual({
      id: "gpt-image-1",
      capabilities: ["image"],
      zeroCost: false,
    });

    const ollama = config.providers.get("ollama")!;
    expect(ollama.keys.map(({ id, hint, limits }) => ({ id, hint, limits }))).toEqual([
      { id: "default", hint: "(no key)", limits: {} },
    ]);
    expect(ollama.models.get("llama3.1")?.zeroCost).toBe(true);
    expect(config.providers.get("anthropic")?.keys[0]?.limits).toEqual({ rpm: 50 });
    expect(config.providers.get("mock")?.models.get("mock-1")).toEqual({
      id: "mock-1",
      capabilities: ["text", "image"],
      zeroCost: true,
      image: MOCK_IMAGE_OPTIONS,
    });

    expect(config.prices.find("openai", "gpt-4o-mini")).toEqual({
      provider: "openai",
      model: "gpt-4o-mini",
      inputPerMillionMicroUsd: 150_000,
      cachedInputPerMillionMicroUsd: 75_000,
      outputPerMillionMicroUsd: 600_000,
    });
    expect(config.prices.find("gemini", "gemini-2.5-flash-image")?.perImageMicroUsd).toBe(39_000);
    expect(config.prices.find("openai", "gpt-image-1")).toEqual({
      provider: "openai",
      model: "gpt-image-1",
      inputPerMillionMicroUsd: 0,
      outputPerMillionMicroUsd: 0,
      perImageMicroUsd: 42_000,
      // Sorted by key, whatever the file's order.
      imagePricesMicroUsd: {
        "1024x1024/high": 167_000,
        "1024x1024/low": 11_000,
        "1024x1024/medium": 42_000,
        "1024x1536/high": 250_000,
        "1024x1536/low": 16_000,
        "1024x1536/medium": 63_000,
        "1536x1024/high": 250_000,
        "1536x1024/low": 16_000,
        "1536x1024/medium": 63_000,
      },
    });
    expect(config.prices.imagePrice("openai", "gpt-image-1", { size: "1024x1536", quality: "high" })).toBe(
      250_000,
    );
    expect(config.prices.imagePrice("openai", "gpt-image-1", { size: "1024x1024", quality: "auto" })).toBe(
      42_000,
    );
    expect(
      config.prices.costMicroUsd({
        provider: "openai",
        model: "gpt-image-1",
        usage: { images: 2 },
        image: { size: "1024x1024", quality: "low" },
      }),
    ).toEqual({ costMicroUsd: 22_000, priced: true });
    expect(
      config.prices.costMicroUsd({ provider: "ollama", model: "llama3.1", usage: { inputTokens: 99 } }),
    ).toEqual({
      costMicroUsd: 0,
      priced: true,
    });
    // Only the file's prices count: a model it does not list is not priced from built-in defaults.
    expect(config.prices.find("openai", "gpt-4.1-mini")).toBeUndefined();
    expect(config.prices.find("anthropic", "claude-opus-4-1")).toBeUndefined();

    expect(config.defaultRoute).toBe("default");
    expect(config.routes.get("default")).toEqual({
      name: "default",
      strategy: "priority",
      targets: [
        { provider: "openai", model: "gpt-4o-mini", weight: 1, tier: 0 },
        { provider: "anthropic", model: "claude-haiku-4-5", weight: 1, tier: 0 },
        { provider: "gemini", model: "gemini-2.5-flash", weight: 1, tier: 1 },
      ],
    });
    expect(config.routes.get("balanced")?.targets.map((target) => target.weight)).toEqual([3, 1]);
    expect(config.retry).toEqual({
      maxCalls: 6,
      perTargetAttempts: 2,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      maxInlineWaitMs: 10_000,
      callTimeoutMs: 60_000,
      deadlineMs: 300_000,
    });
    expect(config.breaker).toEqual(DEFAULT_BREAKER_POLICY);
  });

  it("prices the built-in image models by size and quality when configured from the environment", () => {
    const file = defaultProvidersFile({
      defaultProvider: "openai",
      openai: { apiKey: "sk-test-0123456789" },
    });
    const config = buildRouterConfig(file, { source: "environment" });
    const price = (model: string, size: string, quality?: string) =>
      config.prices.imagePrice("openai", model, { size, ...(quality === undefined ? {} : { quality }) });
    expect(
      ["low", "medium", "high"].map((quality) =>
        ["1024x1024", "1024x1536", "1536x1024"].map((size) => price("gpt-image-1", size, quality)),
      ),
    ).toEqual([
      [11_000, 16_000, 16_000],
      [42_000, 63_000, 63_000],
      [167_000, 250_000, 250_000],
    ]);
    expect(price("gpt-image-1", "1024x1024", "auto")).toBe(42_000);
    expect(
      ["standard", "hd"].map((quality) =>
        ["1024x1024", "1024x1792", "1792x1024"].map((size) => price("dall-e-3", size, quality)),
      ),
    ).toEqual([
      [40_000, 80_000, 80_000],
      [80_000, 120_000, 120_000],
    ]);
    expect(price("dall-e-3", "1792x1024")).toBe(80_000);
  });

  it("builds a JSON file the same way", async () => {
    const source = JSON.stringify({
      version: 1,
      providers: [
        {
          name: "local",
          type: "openai-compatible",
          baseUrl: "http://127.0.0.1:9/v1",
          keys: [{ id: "a", apiKey: "${LOCAL_KEY}", rpm: "${LOCAL_RPM}" }],
          models: [{ id: "qwen", zeroCost: true }],
        },
      ],
    });
    const file = parseProvidersText(source, "providers.json", { LOCAL_KEY: "local-12345", LOCAL_RPM: "60" });
    const config = buildRouterConfig(file, { source });
    expect(config.providers.get("local")?.keys.map(({ id, limits, hint }) => ({ id, limits, hint }))).toEqual(
      [{ id: "a", limits: { rpm: 60 }, hint: "…2345" }],
    );
    expect(config.routes.get("default")?.targets).toEqual([
      { provider: "local", model: "qwen", weight: 1, tier: 0 },
    ]);
    expect(config.priceVersion).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(config.prices.version).toBe(config.priceVersion);
  });

  it("gives each key its own client, sending that key, through the injected fetch", async () => {
    server = await startFakeOpenAIServer();
    const fetchSpy = vi.fn<typeof fetch>((input, init) => fetch(input, init));
    const file = parseProvidersFile(
      {
        version: 1,
        providers: [
          {
            name: "compatible",
            type: "openai-compatible",
            baseUrl: server.url,
            timeoutMs: 5_000,
            keys: [
              { id: "one", apiKey: "key-one-0123456789" },
              { id: "two", apiKey: "key-two-0123456789" },
            ],
            models: [{ id: "gpt-4o-mini", price: { input: 1, output: 1 } }],
          },
        ],
      },
      {},
    );
    const config = buildRouterConfig(file, { source: "test", fetch: fetchSpy });
    const [one, two] = config.providers.get("compatible")!.keys;
    const messages = [{ role: "user" as const, content: "Hi" }];
    await one!.client.generateText({ model: "gpt-4o-mini", messages });
    await two!.client.generateText({ model: "", messages });
    expect(server.requests.map((request) => request.headers.authorization)).toEqual([
      "Bearer key-one-0123456789",
      "Bearer key-two-0123456789",
    ]);
    expect(server.requests[1]?.body).toMatchObject({ model: "gpt-4o-mini" });
    expect(fetchSpy).toHaveBeenCalledTimes(2);
  });

  it("builds a client for a user's key only where user keys are accepted, without the operator's organization", async () => {
    server = await startFakeOpenAIServer();
    const file = parseProvidersFile(
      {
        version: 1,
        providers: [
          {
            name: "byo",
            type: "openai",
            baseUrl: server.url,
            acceptsUserKeys: true,
            options: { organization: "org-operator" },
            keys: [{ id: "system", apiKey: "sk-system-0123456789" }],
            models: [{ id: "gpt-4o-mini", price: { input: 1, output: 1 } }],
          },
          {
            name: "closed",
            type: "openai",
            baseUrl: server.url,
            options: { headers: { "x-gateway-token": "operator-secret" } },
            keys: [{ id: "system", apiKey: "sk-system-0123456789" }],
            models: [{ id: "gpt-4o-mini", price: { input: 1, output: 1 } }],
          },
          { name: "mock", type: "mock" },
        ],
      },
      {},
    );
    const config = buildRouterConfig(file, { source: "test" });
    expect(config.providers.get("closed")).toMatchObject({ acceptsUserKeys: false });
    expect(config.providers.get("closed")?.clientForKey).toBeUndefined();
    expect(config.providers.get("mock")?.clientForKey).toBeUndefined();
    const byo = config.providers.get("byo")!;
    expect(byo).toMatchObject({ acceptsUserKeys: true, userKeyLimits: {} });
    const messages = [{ role: "user" as const, content: "Hi" }];
    await byo.keys[0]!.client.generateText({ model: "gpt-4o-mini", messages });
    await byo.clientForKey!("sk-user-own-0123456789").generateText({ model: "gpt-4o-mini", messages });
    const [system, user] = server.requests;
    expect(system?.headers).toMatchObject({
      authorization: "Bearer sk-system-0123456789",
      "openai-organization": "org-operator",
    });
    expect(user?.headers.authorization).toBe("Bearer sk-user-own-0123456789");
    expect(user?.headers["openai-organization"]).toBeUndefined();
  });

  it("gives mock clients the shared failure counter and the configured behaviour", async () => {
    const counter = createInMemoryFailureCounter();
    const increment = vi.spyOn(counter, "increment");
    const file = parseProvidersFile(
      { version: 1, providers: [{ name: "mock", type: "mock", keys: [{ id: "a" }, { id: "b", rpm: 10 }] }] },
      {},
    );
    const config = buildRouterConfig(file, { source: "test", mockFailureCounter: counter });
    const [a, b] = config.providers.get("mock")!.keys;
    expect(b?.limits).toEqual({ rpm: 10 });
    expect(a?.hint).toBe("(no key)");
    const request = {
      model: "mock-1",
      messages: [{ role: "user" as const, content: "fail once" }],
      providerOptions: { mock: { failTimes: 1 } },
    };
    // Both keys count in the same counter: the second attempt succeeds on the other key.
    await expect(a!.client.generateText(request)).rejects.toBeInstanceOf(ProviderError);
    await expect(b!.client.generateText(request)).resolves.toMatchObject({ model: "mock-1" });
    expect(increment).toHaveBeenCalledTimes(2);
  });

  it("builds independent configs, so a reload never shares state with the old one", async () => {
    const file = parseProvidersFile({ version: 1, providers: [{ name: "mock", type: "mock" }] }, {});
    const first = buildRouterConfig(file, { source: "a" });
    const second = buildRouterConfig(file, { source: "b" });
    expect(first.version).not.toBe(second.version);
    expect(first.providers.get("mock")?.keys[0]?.client).not.toBe(
      second.providers.get("mock")?.keys[0]?.client,
    );
    expect(first.retry).not.toBe(second.retry);
  });

  it("loads and builds in one step", async () => {
    const config = await loadRouterConfig(EXAMPLE_PATH, EXAMPLE_ENV);
    expect(config.version).toBe(shortHash(await readFile(EXAMPLE_PATH, "utf8")));
    expect(config.providers.size).toBe(6);
  });

  it("never shows a whole key in a hint", async () => {
    const config = await loadRouterConfig(EXAMPLE_PATH, EXAMPLE_ENV);
    const hints = [...config.providers.values()].flatMap((provider) => provider.keys.map((key) => key.hint));
    for (const secret of Object.values(EXAMPLE_ENV)) {
      expect(hints.some((hint) => hint.includes(secret))).toBe(false);
    }
  });
});

describe("apiKeyHint", () => {
  it("shows the first 3 and last 4 characters of a long key", () => {
    expect(apiKeyHint("sk-proj-0123456789abcd")).toBe("sk-…abcd");
  });

  it("shows only the last 4 characters of a short key, and nothing of a very short one", () => {
    expect(apiKeyHint("ab12cd34ef")).toBe("…34ef");
    expect(apiKeyHint("12345678")).toBe("…5678");
    expect(apiKeyHint("abc1234")).toBe("…");
  });
});
