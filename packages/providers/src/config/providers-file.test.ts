// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { describe, expect, it } from "vitest";
import { MOCK_IMAGE_OPTIONS } from "./builtin-models.ts";
import { parseProvidersFile } from "./parse-providers-file.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";
import { DEFAULT_BREAKER_POLICY, DEFAULT_RETRY_POLICY } from "./providers-file.ts";

type Data = Record<string, unknown> & { providers: Array<Record<string, unknown>> };

/** A small valid file; tests break one thing in it. */
function validFile(): Data {
  return {
    version: 1,
    providers: [
      { name: "mock", type: "mock" },
      {
        name: "openai",
        type: "openai",
        keys: [{ apiKey: "sk-test-0123456789abcdef" }],
        models: [{ id: "gpt-4o-mini", price: { input: 150_000, output: 600_000 } }],
      },
    ],
    routes: [
      { name: "default", strategy: "priority", targets: [{ provider: "openai", model: "gpt-4o-mini" }] },
    ],
  };
}

/** The issues of an invalid file, as `path: message` lines. */
function issuesOf(data: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseProvidersFile(data, env, { origin: "test.yaml" });
  } catch (error) {
    expect(error).toBeInstanceOf(ProvidersConfigError);
    return (error as ProvidersConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  throw new Error("expected the file to be refused");
}

describe("ProvidersFile defaults", () => {
  it("fills in keys, models, routes and policies", () => {
    const file = parseProvidersFile(validFile(), {});
    expect(file.retry).toEqual(DEFAULT_RETRY_POLICY);
    expect(file.breaker).toEqual(DEFAULT_BREAKER_POLICY);
    expect(file.defaultRoute).toBe("default");
    expect(file.priceVersion).toMatch(/^sha256:[0-9a-f]{12}$/);
    const [mock, openai] = file.providers;
    expect(mock).toEqual({
      name: "mock",
      type: "mock",
      acceptsUserKeys: false,
      keys: [{ id: "default", priority: 1 }],
      defaultModel: "mock-1",
      models: [{ id: "mock-1", capabilities: ["text", "image"], zeroCost: true, image: MOCK_IMAGE_OPTIONS }],
      options: {},
    });
    expect(openai).toMatchObject({
      keys: [{ id: "key-1", priority: 1, apiKey: "sk-test-0123456789abcdef" }],
      defaultModel: "gpt-4o-mini",
      models: [
        {
          id: "gpt-4o-mini",
          capabilities: ["text"],
          price: { input: 150_000, output: 600_000 },
          zeroCost: false,
        },
      ],
    });
  });

  it("keeps given policies and fills the rest", () => {
    const file = parseProvidersFile(
      { ...validFile(), retry: { maxCalls: 3 }, breaker: { openMs: 1000 } },
      {},
    );
    expect(file.retry).toEqual({ ...DEFAULT_RETRY_POLICY, maxCalls: 3 });
    expect(file.breaker).toEqual({ ...DEFAULT_BREAKER_POLICY, openMs: 1000 });
  });

  it("synthesizes a default route to the first provider's default model when there are no routes", () => {
    const data = validFile();
    data.providers.reverse();
    delete data.routes;
    const file = parseProvidersFile(data, {});
    expect(file.routes).toEqual([
      {
        name: "default",
        strategy: "priority",
        targets: [{ provider: "openai", model: "gpt-4o-mini", weight: 1, tier: 0 }],
      },
    ]);
    expect(file.defaultRoute).toBe("default");
  });

  it("takes the first route as the default route, and a target's model from its provider", () => {
    const file = parseProvidersFile(
      {
        ...validFile(),
        routes: [
          { name: "fast", targets: [{ provider: "mock" }] },
          { name: "default", targets: [{ provider: "openai" }] },
        ],
      },
      {},
    );
    expect(file.defaultRoute).toBe("fast");
    expect(file.routes[0]).toEqual({
      name: "fast",
      strategy: "priority",
      targets: [{ provider: "mock", model: "mock-1", weight: 1, tier: 0 }],
    });
  });

  it("gives a keyless OpenAI-compatible server one implicit key", () => {
    const data = validFile();
    data.providers.push({
      name: "ollama",
      type: "openai-compatible",
      baseUrl: "http://127.0.0.1:11434/v1",
      models: [{ id: "llama3", zeroCost: true }],
    });
    const ollama = parseProvidersFile(data, {}).providers[2];
    expect(ollama?.keys).toEqual([{ id: "default", priority: 1 }]);
    expect(ollama?.models).toEqual([{ id: "llama3", capabilities: ["text"], zeroCost: true }]);
  });

  it("makes listed mock models free unless they are priced", () => {
    const data = validFile();
    data.providers[0] = {
      name: "mock",
      type: "mock",
      models: [{ id: "free" }, { id: "paid", price: { input: 1, output: 2 } }],
    };
    const mock = parseProvidersFile(data, {}).providers[0];
    expect(mock?.models.map((model) => [model.id, model.zeroCost, model.price])).toEqual([
      ["free", true, undefined],
      ["paid", false, { input: 1, output: 2 }],
    ]);
  });

  it("coerces numbers and booleans that come from variables", () => {
    const data = validFile();
    data.providers[1]!.keys = [{ apiKey: "${KEY}", rpm: "${RPM}", tpm: "${TPM:-200_000}", priority: "2" }];
    data.providers[1]!.models = [{ id: "local", zeroCost: "${FREE}" }];
    data.routes = [{ name: "default", targets: [{ provider: "openai", weight: "${WEIGHT}" }] }];
    const file = parseProvidersFile(data, { KEY: "sk-x", RPM: "500", FREE: "true", WEIGHT: "3" });
    expect(file.providers[1]?.keys[0]).toEqual({
      id: "key-1",
      apiKey: "sk-x",
      priority: 2,
      rpm: 500,
      tpm: 200_000,
    });
    expect(file.providers[1]?.models[0]?.zeroCost).toBe(true);
    expect(file.routes[0]?.targets[0]?.weight).toBe(3);
  });

  it("keeps image prices by size and quality, coercing numbers that come from variables", () => {
    const data = validFile();
    data.providers[1]!.models = [
      { id: "gpt-4o-mini", price: { input: 150_000, output: 600_000 } },
      {
        id: "gpt-image-1",
        capabilities: ["image"],
        price: { perImage: 42_000, images: { "1024x1024/low": "${LOW}", "*/high": 167_000 } },
      },
    ];
    expect(parseProvidersFile(data, { LOW: "11_000" }).providers[1]?.models[1]).toEqual({
      id: "gpt-image-1",
      capabilities: ["image"],
      price: {
        input: 0,
        output: 0,
        perImage: 42_000,
        images: { "1024x1024/low": 11_000, "*/high": 167_000 },
      },
      zeroCost: false,
    });
  });

  it("computes the same price version whatever the order of image prices, and another one when one changes", () => {
    const withImages = (images: Record<string, number>) => {
      const data = validFile();
      data.providers[1]!.models = [
        { id: "gpt-4o-mini", price: { input: 150_000, output: 600_000 } },
        { id: "gpt-image-1", capabilities: ["image"], price: { images } },
      ];
      return parseProvidersFile(data, {}).priceVersion;
    };
    const version = withImages({ "1024x1024/low": 11_000, "1024x1024/high": 167_000 });
    expect(withImages({ "1024x1024/high": 167_000, "1024x1024/low": 11_000 })).toBe(version);
    expect(withImages({ "1024x1024/low": 11_000, "1024x1024/high": 167_001 })).not.toBe(version);
    expect(withImages({ "1024x1024/low": 11_000, "1536x1024/high": 167_000 })).not.toBe(version);
  });

  it("computes the same price version whatever the order, and another one when a price changes", () => {
    const data = validFile();
    const version = parseProvidersFile(data, {}).priceVersion;
    const reordered = validFile();
    reordered.providers.reverse();
    expect(parseProvidersFile(reordered, {}).priceVersion).toBe(version);
    const repriced = validFile();
    repriced.providers[1]!.models = [{ id: "gpt-4o-mini", price: { input: 150_001, output: 600_000 } }];
    expect(parseProvidersFile(repriced, {}).priceVersion).not.toBe(version);
    expect(parseProvidersFile({ ...data, priceVersion: "2026-11-01" }, {}).priceVersion).toBe("2026-11-01");
  });
});

describe("ProvidersFile validation", () => {
  it("lists every issue in the error message, one per line, naming the file", () => {
    const data = validFile();
    data.providers[1]!.models = [{ id: "gpt-4o-mini" }];
    data.providers[1]!.name = "mock";
    let message = "";
    try {
      parseProvidersFile(data, {}, { origin: "/etc/genq/providers.yaml" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split("\n")).toEqual([
      "Invalid providers configuration (/etc/genq/providers.yaml):",
      '  providers[1].name: duplicate provider name "mock" (also providers[0])',
      "  providers[1].models[0].price: a model needs a price or zeroCost: true",
      '  routes[0].targets[0].provider: provider "openai" is not configured',
    ]);
  });

  it("refuses a model with neither a price nor zeroCost (pricing fails closed)", () => {
    const data = validFile();
    data.providers[1]!.models = [{ id: "gpt-4o-mini" }];
    expect(issuesOf(data)).toEqual(["providers[1].models[0].price: a model needs a price or zeroCost: true"]);
  });

  it("refuses a mock model with zeroCost: false and no price", () => {
    const data = validFile();
    data.providers[0] = { name: "mock", type: "mock", models: [{ id: "m", zeroCost: false }] };
    expect(issuesOf(data)).toEqual(["providers[0].models[0].price: a model needs a price or zeroCost: true"]);
  });

  it("refuses a price together with zeroCost: true", () => {
    const data = validFile();
    data.providers[1]!.models = [{ id: "gpt-4o-mini", zeroCost: true, price: { input: 1, output: 1 } }];
    expect(issuesOf(data)).toEqual([
      "providers[1].models[0].zeroCost: give either a price or zeroCost: true, not both",
    ]);
  });

  it("requires input and output prices for text models and a per-image price for image models", () => {
    const data = validFile();
    data.providers[1]!.models = [
      { id: "gpt-4o-mini", price: { input: 150_000 } },
      { id: "gpt-image-1", capabilities: ["image"], price: { cachedInput: 1 } },
      { id: "dall-e-3", capabilities: ["image"], price: { perImage: 40_000 } },
      { id: "dall-e-2", capabilities: ["image"], price: { images: { "1024x1024": 20_000 } } },
    ];
    expect(issuesOf(data)).toEqual([
      "providers[1].models[0].price: a text model's price needs input and output",
      "providers[1].models[1].price: an image model's price needs perImage or images (or input and output)",
    ]);
  });

  it("refuses image price keys that are not a size and/or quality", () => {
    const data = validFile();
    data.providers[1]!.models = [
      {
        id: "gpt-image-1",
        capabilities: ["image"],
        price: {
          images: {
            big: 1,
            "1024x1024/High": 1,
            "1024*1024": 1,
            "*/": 1,
            "0x1024": 1,
            "1024x1024/low": 11_000,
            "*": 42_000,
          },
        },
      },
    ];
    const message =
      'must be "<width>x<height>/<quality>", "<width>x<height>" or "*/<quality>" (e.g. "1024x1024/high"), with the quality in lowercase letters';
    expect(issuesOf(data)).toEqual([
      `providers[1].models[0].price.images.big: ${message}`,
      `providers[1].models[0].price.images["1024x1024/High"]: ${message}`,
      `providers[1].models[0].price.images["1024*1024"]: ${message}`,
      `providers[1].models[0].price.images["*/"]: ${message}`,
      `providers[1].models[0].price.images["0x1024"]: ${message}`,
    ]);
  });

  it("refuses image prices that are negative or not whole micro-USD, and an empty image price map", () => {
    const data = validFile();
    data.providers[1]!.models = [
      {
        id: "gpt-image-1",
        capabilities: ["image"],
        price: { images: { "1024x1024/low": -1, "1024x1024/high": 0.5, "*/hd": "lots" } },
      },
      { id: "dall-e-3", capabilities: ["image"], price: { images: {} } },
      { id: "dall-e-2", capabilities: ["image"], price: { images: [20_000] } },
    ];
    expect(issuesOf(data)).toEqual([
      'providers[1].models[0].price.images["1024x1024/low"]: must not be negative',
      'providers[1].models[0].price.images["1024x1024/high"]: must be a whole number of micro-USD',
      'providers[1].models[0].price.images["*/hd"]: must be a number, not a string',
      "providers[1].models[1].price.images: list at least one image price, or leave images out",
      "providers[1].models[2].price.images: must be a map, not a list",
    ]);
  });

  it("refuses prices that are negative or not whole micro-USD", () => {
    const data = validFile();
    data.providers[1]!.models = [{ id: "gpt-4o-mini", price: { input: 0.15, output: -1 } }];
    expect(issuesOf(data)).toEqual([
      "providers[1].models[0].price.input: must be a whole number of micro-USD",
      "providers[1].models[0].price.output: must not be negative",
    ]);
  });

  it("refuses duplicate provider names", () => {
    const data = validFile();
    data.providers.push({ ...data.providers[1] });
    expect(issuesOf(data)).toEqual([
      'providers[2].name: duplicate provider name "openai" (also providers[1])',
    ]);
  });

  it("refuses duplicate key ids within a provider, default ids included", () => {
    const data = validFile();
    data.providers[1]!.keys = [
      { id: "primary", apiKey: "a" },
      { id: "primary", apiKey: "b" },
      { apiKey: "c" },
      { id: "key-3", apiKey: "d" },
    ];
    expect(issuesOf(data)).toEqual([
      'providers[1].keys[1].id: duplicate key id "primary" (also keys[0])',
      'providers[1].keys[3].id: duplicate key id "key-3" (also keys[2])',
    ]);
  });

  it("refuses duplicate model ids within a provider", () => {
    const data = validFile();
    const model = { id: "gpt-4o-mini", price: { input: 1, output: 1 } };
    data.providers[1]!.models = [model, model];
    expect(issuesOf(data)).toEqual([
      'providers[1].models[1].id: duplicate model id "gpt-4o-mini" (also models[0])',
    ]);
  });

  it("refuses duplicate route names", () => {
    const data = validFile();
    data.routes = [
      { name: "default", targets: [{ provider: "mock" }] },
      { name: "default", targets: [{ provider: "openai" }] },
    ];
    expect(issuesOf(data)).toEqual(['routes[1].name: duplicate route name "default" (also routes[0])']);
  });

  it("refuses route targets naming an unknown provider or a model the provider does not list", () => {
    const data = validFile();
    data.routes = [
      {
        name: "default",
        targets: [
          { provider: "deepseek", model: "deepseek-chat" },
          { provider: "openai", model: "gpt-5" },
          { provider: "mock", model: "gpt-4o-mini" },
        ],
      },
    ];
    expect(issuesOf(data)).toEqual([
      'routes[0].targets[0].provider: provider "deepseek" is not configured',
      'routes[0].targets[1].model: model "gpt-5" is not listed under provider "openai"',
      'routes[0].targets[2].model: model "gpt-4o-mini" is not listed under provider "mock"',
    ]);
  });

  it("refuses the same target twice in a route", () => {
    const data = validFile();
    data.routes = [
      {
        name: "default",
        targets: [{ provider: "openai" }, { provider: "openai", model: "gpt-4o-mini", tier: 1 }],
      },
    ];
    expect(issuesOf(data)).toEqual(["routes[0].targets[1]: duplicate target openai/gpt-4o-mini"]);
  });

  it("refuses weights that are not whole numbers above 0", () => {
    const data = validFile();
    data.routes = [
      {
        name: "default",
        strategy: "weighted",
        targets: [
          { provider: "openai", weight: 0 },
          { provider: "mock", weight: 1.5 },
        ],
      },
    ];
    expect(issuesOf(data)).toEqual([
      "routes[0].targets[0].weight: must be greater than 0",
      "routes[0].targets[1].weight: must be a whole number",
    ]);
  });

  it("refuses an unknown strategy", () => {
    const data = validFile();
    data.routes = [{ name: "default", strategy: "fastest", targets: [{ provider: "openai" }] }];
    expect(issuesOf(data)).toEqual([
      "routes[0].strategy: must be one of priority, cost, latency, weighted, least-busy",
    ]);
  });

  it("refuses a defaultRoute that is not defined", () => {
    expect(issuesOf({ ...validFile(), defaultRoute: "fast" })).toEqual([
      'defaultRoute: route "fast" is not defined',
    ]);
    const withoutRoutes = validFile();
    delete withoutRoutes.routes;
    expect(parseProvidersFile({ ...withoutRoutes, defaultRoute: "default" }, {}).defaultRoute).toBe(
      "default",
    );
    expect(issuesOf({ ...withoutRoutes, defaultRoute: "other" })).toEqual([
      'defaultRoute: route "other" is not defined',
    ]);
  });

  it("refuses a defaultModel the provider does not list", () => {
    const data = validFile();
    data.providers[1]!.defaultModel = "gpt-4o";
    expect(issuesOf(data)).toEqual(['providers[1].defaultModel: model "gpt-4o" is not listed in models']);
  });

  it("requires models for every provider but the mock", () => {
    const data = validFile();
    delete data.providers[1]!.models;
    delete data.routes;
    expect(issuesOf(data)).toEqual([
      "providers[1].models: list at least one model, with its price (or zeroCost: true)",
    ]);
  });

  it("requires keys for openai, anthropic and gemini", () => {
    const data = validFile();
    delete data.providers[1]!.keys;
    data.providers.push({
      name: "claude",
      type: "anthropic",
      keys: [],
      models: [{ id: "m", zeroCost: true }],
    });
    expect(issuesOf(data)).toEqual([
      "providers[1].keys: is required",
      "providers[2].keys: list at least one key",
    ]);
  });

  it("requires a baseUrl for openai-compatible providers, and http(s) URLs", () => {
    const data = validFile();
    data.providers.push({
      name: "deepseek",
      type: "openai-compatible",
      models: [{ id: "m", zeroCost: true }],
    });
    data.providers[1]!.baseUrl = "ftp://example.com";
    expect(issuesOf(data)).toEqual([
      "providers[1].baseUrl: must be an http:// or https:// URL",
      "providers[2].baseUrl: is required",
    ]);
  });

  it("refuses an unknown or missing provider type", () => {
    const data = validFile();
    data.providers[1]!.type = "azure";
    delete data.providers[0]!.type;
    expect(issuesOf(data)).toEqual([
      "providers[0].type: is required",
      "providers[1].type: must be one of openai, openai-compatible, anthropic, gemini, mock",
    ]);
  });

  it("refuses provider names outside [a-z0-9][a-z0-9-_]*", () => {
    const data = validFile();
    data.providers[0]!.name = "My Mock";
    expect(issuesOf(data)).toEqual([
      "providers[0].name: must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
    ]);
  });

  it("names unknown fields at their own path", () => {
    const data = validFile();
    data.providers[1]!.keys = [{ apikey: "sk-typo" }];
    data.retrys = {};
    expect(issuesOf(data)).toEqual([
      "providers[1].keys[0].apiKey: is required",
      "providers[1].keys[0].apikey: is not a known field (check the spelling)",
      "retrys: is not a known field (check the spelling)",
    ]);
  });

  it("refuses options that belong to another provider type", () => {
    const data = validFile();
    data.providers[1]!.options = { latencyMs: 10 };
    expect(issuesOf(data)).toEqual([
      "providers[1].options.latencyMs: is not a known field (check the spelling)",
    ]);
  });

  it("requires version 1", () => {
    const { version: _, ...withoutVersion } = validFile();
    expect(issuesOf(withoutVersion)).toEqual(["version: is required"]);
    expect(issuesOf({ ...validFile(), version: 2 })).toEqual(["version: must be 1"]);
  });

  it("requires a map at the top level", () => {
    expect(issuesOf(null)).toEqual(["(root): must be a map, not null"]);
    expect(issuesOf([])).toEqual(["(root): must be a map, not a list"]);
  });

  it("refuses retry delays where the maximum is below the base", () => {
    expect(issuesOf({ ...validFile(), retry: { baseDelayMs: 5000, maxDelayMs: 1000 } })).toEqual([
      "retry.maxDelayMs: must be at least baseDelayMs (5000)",
    ]);
  });

  it("says which field wanted a number when a variable holds something else", () => {
    const data = validFile();
    data.providers[1]!.keys = [{ apiKey: "sk-x", rpm: "${RPM}" }];
    expect(issuesOf(data, { RPM: "lots" })).toEqual([
      "providers[1].keys[0].rpm: must be a number, not a string",
    ]);
  });

  it("reports an unset variable once, at its path", () => {
    const data = validFile();
    data.providers[1]!.keys = [{ apiKey: "${OPENAI_API_KEY}", rpm: "${RPM}" }];
    expect(issuesOf(data)).toEqual([
      "providers[1].keys[0].apiKey: environment variable OPENAI_API_KEY is not set",
      "providers[1].keys[0].rpm: environment variable RPM is not set",
    ]);
  });

  it("never puts an API key value in an error message", () => {
    const secret = "sk-live-SECRET0123456789abcdef";
    const env = { KEY: secret };
    const data = {
      version: "${KEY}",
      priceVersion: ["${KEY}"],
      defaultRoute: "${KEY}",
      providers: [
        {
          name: "${KEY}",
          type: "${KEY}",
          keys: [{ apiKey: "${KEY}" }],
        },
        {
          name: "openai",
          type: "openai",
          baseUrl: "${KEY}",
          timeoutMs: "${KEY}",
          keys: [{ id: "${KEY}", apiKey: "${KEY}", rpm: "${KEY}", priority: true }, { apiKey: secret }],
          defaultModel: "${KEY} ${KEY}",
          models: [{ id: "${KEY}", capabilities: ["${KEY}"], price: { input: "${KEY}" } }],
          options: { "${KEY}": "${KEY}", headers: { authorization: 1 } },
        },
        {
          name: "x",
          type: "openai-compatible",
          baseUrl: "http://h/v1",
          keys: [{ apiKey: "${sk-live-SECRET0123456789abcdef}" }],
        },
      ],
      routes: [
        {
          name: "r",
          strategy: "${KEY}",
          targets: [{ provider: "${KEY}", model: "${KEY}", weight: "${KEY}" }],
        },
      ],
    };
    let error: unknown;
    try {
      parseProvidersFile(data, env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ProvidersConfigError);
    const text = `${(error as Error).message}\n${JSON.stringify((error as ProvidersConfigError).issues)}`;
    expect((error as ProvidersConfigError).issues.length).toBeGreaterThan(10);
    expect(text).not.toContain("SECRET0123456789");
  });
});

describe("acceptsUserKeys (BYO keys)", () => {
  function withOpenAI(fields: Record<string, unknown>, type = "openai"): Data {
    const file = validFile();
    file.providers[1] = { ...file.providers[1], type, ...fields };
    return file;
  }

  it("is off by default, and userKeyLimits default to the provider's first key's limits", () => {
    const off = parseProvidersFile(validFile(), {});
    expect(off.providers.map((provider) => provider.acceptsUserKeys)).toEqual([false, false]);
    const on = parseProvidersFile(
      withOpenAI({
        acceptsUserKeys: true,
        keys: [
          { id: "spare", apiKey: "sk-test-spare-0123456789", priority: 2, rpm: 5 },
          { id: "main", apiKey: "sk-test-main-0123456789", priority: 1, rpm: 60, tpm: 1000 },
        ],
      }),
      {},
    );
    expect(on.providers[1]).toMatchObject({ acceptsUserKeys: true, userKeyLimits: { rpm: 60, tpm: 1000 } });
    const explicit = parseProvidersFile(
      withOpenAI({ acceptsUserKeys: "true", userKeyLimits: { rpm: 3 } }),
      {},
    );
    expect(explicit.providers[1]).toMatchObject({ acceptsUserKeys: true, userKeyLimits: { rpm: 3 } });
  });

  it("refuses it on the mock, on a keyless server and on a provider with operator headers", () => {
    const file = validFile();
    file.providers[0] = { name: "mock", type: "mock", acceptsUserKeys: true };
    expect(issuesOf(file)).toEqual([
      "providers[0].acceptsUserKeys: the mock provider cannot accept user keys: it checks no key, so their jobs would run without quota",
    ]);
    expect(
      issuesOf(
        withOpenAI(
          { acceptsUserKeys: true, keys: undefined, baseUrl: "http://127.0.0.1:11434/v1" },
          "openai-compatible",
        ),
      ),
    ).toEqual([
      "providers[1].acceptsUserKeys: a keyless server cannot accept user keys: it checks no key, so their jobs would run without quota; give it keys if it checks them",
    ]);
    expect(
      issuesOf(
        withOpenAI({ acceptsUserKeys: true, options: { headers: { "x-gateway-token": "operator-secret" } } }),
      ),
    ).toEqual([
      "providers[1].acceptsUserKeys: a provider with operator headers cannot accept user keys: the headers may be what authenticates (they are never sent with a user's key); remove options.headers or acceptsUserKeys",
    ]);
  });

  it("refuses userKeyLimits on a provider that does not accept user keys", () => {
    expect(issuesOf(withOpenAI({ userKeyLimits: { rpm: 3 } }))).toEqual([
      "providers[1].userKeyLimits: applies only with acceptsUserKeys: true",
    ]);
  });
});
