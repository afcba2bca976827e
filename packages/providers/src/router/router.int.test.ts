import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAnthropicProvider } from "../anthropic/index.ts";
import { createMockProvider } from "../mock/mock-provider.ts";
import { createOpenAIProvider } from "../openai/index.ts";
import { createPriceCatalog, type PriceEntry } from "../price-catalog.ts";
import type { Provider } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import {
  type FakeAnthropicServer,
  type FakeOpenAIServer,
  openAIErrorBodies,
  startFakeAnthropicServer,
  startFakeOpenAIServer,
} from "../testing/index.ts";
import { ProviderRouter, RouteDelayedError, RouteFailedError, userKeyStateId } from "./router.ts";
import { RedisRouterState } from "./state/redis-router-state.ts";
import type {
  BreakerPolicy,
  KeyLimits,
  ProviderDeployment,
  RetryPolicy,
  RouterConfig,
  RouteSpec,
  StrategyName,
} from "./types.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const MESSAGES = [{ role: "user" as const, content: "hello router" }];

const RETRY: RetryPolicy = {
  maxCalls: 6,
  perTargetAttempts: 2,
  baseDelayMs: 10,
  maxDelayMs: 50,
  maxInlineWaitMs: 5_000,
  callTimeoutMs: 5_000,
  deadlineMs: 20_000,
};
const BREAKER: BreakerPolicy = {
  failureThreshold: 3,
  windowMs: 60_000,
  openMs: 400,
  halfOpenProbes: 1,
  keyRetryMs: 60_000,
};

interface KeySpec {
  id: string;
  client: Provider;
  priority?: number;
  limits?: KeyLimits;
}

function deployment(
  name: string,
  models: Array<{ id: string; zeroCost?: boolean }>,
  keys: KeySpec[],
  userKeys: { accept: boolean; limits?: KeyLimits } = { accept: false },
): ProviderDeployment {
  return {
    name,
    type: "openai-compatible",
    acceptsUserKeys: userKeys.accept,
    ...(userKeys.accept ? { userKeyLimits: userKeys.limits ?? {} } : {}),
    keys: keys.map((key) => ({
      id: key.id,
      priority: key.priority ?? 1,
      limits: key.limits ?? {},
      client: key.client,
      hint: "…test",
    })),
    models: new Map(
      models.map((model) => [
        model.id,
        { id: model.id, capabilities: ["text" as const], zeroCost: model.zeroCost ?? false },
      ]),
    ),
    defaultModel: models[0]?.id,
  };
}

function price(provider: string, model: string, input: number, output: number): PriceEntry {
  return { provider, model, inputPerMillionMicroUsd: input, outputPerMillionMicroUsd: output };
}

function config(options: {
  providers: ProviderDeployment[];
  routes?: RouteSpec[];
  prices?: PriceEntry[];
  retry?: Partial<RetryPolicy>;
  version?: string;
}): RouterConfig {
  const routes = options.routes ?? [
    {
      name: "default",
      strategy: "priority",
      targets: options.providers.map((provider) => ({
        provider: provider.name,
        model: provider.defaultModel ?? "",
        weight: 1,
        tier: 0,
      })),
    },
  ];
  return {
    version: options.version ?? "test",
    priceVersion: "2026-11-01",
    providers: new Map(options.providers.map((provider) => [provider.name, provider])),
    routes: new Map(routes.map((route) => [route.name, route])),
    defaultRoute: routes[0]?.name ?? "default",
    retry: { ...RETRY, ...options.retry },
    breaker: BREAKER,
    prices: createPriceCatalog(options.prices ?? [], { includeDefaults: false }),
  };
}

function openAIClient(server: FakeOpenAIServer, name: string, apiKey = "sk-test"): Provider {
  return createOpenAIProvider({ name, apiKey, baseURL: server.url });
}

describe("ProviderRouter", () => {
  let redis: Redis;
  let prefix: string;
  let openai: FakeOpenAIServer;
  let backup: FakeOpenAIServer;
  let anthropic: FakeAnthropicServer;

  beforeEach(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    prefix = `test-router-${randomBytes(4).toString("hex")}`;
    [openai, backup, anthropic] = await Promise.all([
      startFakeOpenAIServer(),
      startFakeOpenAIServer(),
      startFakeAnthropicServer(),
    ]);
  });

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await Promise.all([openai.close(), backup.close(), anthropic.close()]);
  });

  function router(
    routerConfig: RouterConfig | (() => RouterConfig),
    connection: Redis = redis,
  ): ProviderRouter {
    return new ProviderRouter({
      config: typeof routerConfig === "function" ? routerConfig : () => routerConfig,
      state: new RedisRouterState({ redis: connection, prefix, breaker: () => BREAKER }),
    });
  }

  const primaryOnly = () =>
    config({
      providers: [
        deployment("openai", [{ id: "gpt-4o-mini" }], [{ id: "a", client: openAIClient(openai, "openai") }]),
      ],
      prices: [price("openai", "gpt-4o-mini", 150_000, 600_000)],
    });

  it("answers through the default route and prices the call with the configured price version", async () => {
    const routed = await router(primaryOnly()).generateText({}, { messages: MESSAGES });
    expect(routed.provider).toBe("openai");
    expect(routed.keyId).toBe("a");
    expect(routed.priceVersion).toBe("2026-11-01");
    expect(routed.costMicroUsd).toBeGreaterThan(0);
    expect(routed.calls).toEqual([
      expect.objectContaining({ seq: 1, provider: "openai", keyId: "a", outcome: "ok" }),
    ]);
  });

  it("waits out a 429's Retry-After on the only target and then succeeds, in one job attempt", async () => {
    openai.queueResponse({
      status: 429,
      headers: { "retry-after-ms": "300" },
      body: openAIErrorBodies.rateLimit,
    });
    const started = Date.now();
    const routed = await router(primaryOnly()).generateText({}, { messages: MESSAGES });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(routed.calls.map((call) => [call.outcome, call.errorCode])).toEqual([
      ["error", "rate_limited"],
      ["skipped", "rate_limited"],
      ["ok", undefined],
    ]);
    expect(openai.requests.filter((request) => request.path.endsWith("/chat/completions"))).toHaveLength(2);
  });

  it("hands the job back to the queue when Retry-After is longer than the inline wait", async () => {
    openai.queueResponse({
      status: 429,
      headers: { "retry-after": "30" },
      body: openAIErrorBodies.rateLimit,
    });
    const error = await router(config({ ...primaryOnlyParts(), retry: { maxInlineWaitMs: 1_000 } }))
      .generateText({}, { messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RouteDelayedError);
    expect((error as RouteDelayedError).delayMs).toBeGreaterThan(25_000);
    expect((error as RouteDelayedError).delayMs).toBeLessThanOrEqual(30_000);
  });

  function primaryOnlyParts() {
    return {
      providers: [
        deployment("openai", [{ id: "gpt-4o-mini" }], [{ id: "a", client: openAIClient(openai, "openai") }]),
      ],
      prices: [price("openai", "gpt-4o-mini", 150_000, 600_000)],
    };
  }

  it("falls back to the next provider after repeated 500s and records every call", async () => {
    openai.setHandler(() => ({ status: 500, body: openAIErrorBodies.serverError }));
    const routed = await router(
      config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
          ),
          deployment(
            "anthropic",
            [{ id: "claude-haiku-4-5" }],
            [{ id: "main", client: createAnthropicProvider({ apiKey: "sk-ant", baseURL: anthropic.url }) }],
          ),
        ],
        prices: [
          price("openai", "gpt-4o-mini", 150_000, 600_000),
          price("anthropic", "claude-haiku-4-5", 1, 1),
        ],
      }),
    ).generateText({}, { messages: MESSAGES });
    expect(routed.provider).toBe("anthropic");
    expect(routed.calls.map((call) => `${call.provider}:${call.outcome}:${call.errorCode ?? ""}`)).toEqual([
      "openai:error:provider_unavailable",
      "openai:error:provider_unavailable",
      "anthropic:ok:",
    ]);
  });

  it("fails at once on a 400 without trying other targets", async () => {
    openai.queueResponse({
      status: 400,
      body: { error: { message: "bad", type: "invalid_request_error", param: null, code: null } },
    });
    const error = await router(
      config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
          ),
          deployment(
            "backup",
            [{ id: "gpt-4o-mini" }],
            [{ id: "b", client: openAIClient(backup, "backup") }],
          ),
        ],
        prices: [price("openai", "gpt-4o-mini", 1, 1), price("backup", "gpt-4o-mini", 1, 1)],
      }),
    )
      .generateText({}, { messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RouteFailedError);
    expect((error as RouteFailedError).code).toBe("invalid_request");
    expect((error as RouteFailedError).retryable).toBe(false);
    expect((error as RouteFailedError).calls).toHaveLength(1);
    expect(backup.requests).toHaveLength(0);
  });

  it("takes a key out of rotation on insufficient_quota and uses the next key, in this and later calls", async () => {
    openai.setHandler((request) =>
      request.headers.authorization === "Bearer sk-first"
        ? { status: 429, body: openAIErrorBodies.insufficientQuota }
        : undefined,
    );
    const routerConfig = config({
      providers: [
        deployment(
          "openai",
          [{ id: "gpt-4o-mini" }],
          [
            { id: "first", priority: 1, client: openAIClient(openai, "openai", "sk-first") },
            { id: "second", priority: 2, client: openAIClient(openai, "openai", "sk-second") },
          ],
        ),
      ],
      prices: [price("openai", "gpt-4o-mini", 1, 1)],
    });
    const first = await router(routerConfig).generateText({}, { messages: MESSAGES });
    expect(first.keyId).toBe("second");
    expect(first.calls.map((call) => `${call.keyId}:${call.errorCode ?? "ok"}`)).toEqual([
      "first:credit_exhausted",
      "second:ok",
    ]);
    const second = await router(routerConfig).generateText({}, { messages: MESSAGES });
    expect(second.calls.map((call) => call.keyId)).toEqual(["second"]);
    const firstKeyCalls = openai.requests.filter(
      (request) => request.headers.authorization === "Bearer sk-first",
    );
    expect(firstKeyCalls).toHaveLength(1);
  });

  it("opens the circuit after the threshold for every process, half-opens after its timeout and closes on success", async () => {
    const other = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      const routerConfig = config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
          ),
        ],
        prices: [price("openai", "gpt-4o-mini", 1, 1)],
        retry: { perTargetAttempts: 3, maxCalls: 3 },
      });
      openai.setHandler(() => ({ status: 503, body: openAIErrorBodies.serverError }));
      const failing = await router(routerConfig)
        .generateText({}, { messages: MESSAGES })
        .catch((caught: unknown) => caught);
      expect((failing as RouteFailedError).code).toBe("provider_unavailable");
      expect(openai.requests).toHaveLength(3);

      // A second "process" (its own connection and router) sees the open circuit: it makes no
      // call until the circuit half-opens, then its probe succeeds.
      openai.setHandler(undefined);
      const started = Date.now();
      const routed = await router(routerConfig, other).generateText({}, { messages: MESSAGES });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(routed.calls.map((call) => `${call.outcome}:${call.errorCode ?? ""}`)).toEqual([
        "skipped:provider_unavailable",
        "ok:",
      ]);
      expect(openai.requests).toHaveLength(4);
    } finally {
      other.disconnect();
    }
  });

  it("routes a call through a half-open circuit after its open time and closes it on success", async () => {
    const routerConfig = config({
      providers: [
        deployment("openai", [{ id: "gpt-4o-mini" }], [{ id: "a", client: openAIClient(openai, "openai") }]),
      ],
      prices: [price("openai", "gpt-4o-mini", 1, 1)],
      retry: { perTargetAttempts: 3, maxCalls: 3 },
    });
    openai.setHandler(() => ({ status: 503, body: openAIErrorBodies.serverError }));
    await router(routerConfig)
      .generateText({}, { messages: MESSAGES })
      .catch(() => undefined);
    openai.setHandler(undefined);
    // Open for 400 ms, below the inline wait: the router waits for the half-open probe.
    const routed = await router(routerConfig).generateText({}, { messages: MESSAGES });
    expect(routed.calls.map((call) => call.outcome)).toEqual(["skipped", "ok"]);
    const state = new RedisRouterState({ redis, prefix, breaker: () => BREAKER });
    const [stats] = await state.targetStats([{ provider: "openai", model: "gpt-4o-mini" }]);
    expect(stats?.circuit).toBe("closed");
  });

  it("refuses an unpriced model that is not zeroCost, and allows a zeroCost one", async () => {
    const routerConfig = config({
      providers: [
        deployment(
          "local",
          [{ id: "llama3", zeroCost: true }, { id: "mystery" }],
          [{ id: "none", client: openAIClient(openai, "local") }],
        ),
      ],
    });
    const error = await router(routerConfig)
      .generateText({ provider: "local", model: "mystery" }, { messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect((error as { code: string }).code).toBe("invalid_request");
    expect((error as Error).message).toMatch(/mystery has no price/);
    const routed = await router(routerConfig).generateText(
      { provider: "local", model: "llama3" },
      { messages: MESSAGES },
    );
    expect(routed.costMicroUsd).toBe(0);
  });

  it("names the configured providers when a job asks for an unknown one", async () => {
    const error = await router(primaryOnly())
      .generateText({ provider: "nope" }, { messages: MESSAGES })
      .catch((caught: unknown) => caught);
    expect((error as { code: string }).code).toBe("invalid_request");
    expect((error as Error).message).toMatch(/configured: openai/);
  });

  describe("strategies", () => {
    function mocks(names: string[]): ProviderDeployment[] {
      return names.map((name) =>
        deployment(
          name,
          [{ id: "m" }],
          [{ id: "k", client: createMockProvider({ name, defaultModel: "m" }) }],
        ),
      );
    }

    function routeOf(strategy: StrategyName, weights: number[] = [1, 1, 1]): RouteSpec {
      return {
        name: "r",
        strategy,
        targets: ["p1", "p2", "p3"].map((provider, index) => ({
          provider,
          model: "m",
          weight: weights[index] ?? 1,
          tier: 0,
        })),
      };
    }

    it("cost picks the cheapest target", async () => {
      const routed = await router(
        config({
          providers: mocks(["p1", "p2", "p3"]),
          routes: [routeOf("cost")],
          prices: [price("p1", "m", 300, 300), price("p2", "m", 100, 100), price("p3", "m", 200, 200)],
        }),
      ).generateText({ model: "r" }, { messages: MESSAGES });
      expect(routed.provider).toBe("p2");
    });

    it("weighted follows the weights over a run of calls", async () => {
      const weighted = router(
        config({
          providers: mocks(["p1", "p2", "p3"]),
          routes: [routeOf("weighted", [5, 3, 2])],
          prices: ["p1", "p2", "p3"].map((provider) => price(provider, "m", 0, 0)),
        }),
      );
      const counts: Record<string, number> = {};
      for (let index = 0; index < 100; index += 1) {
        const routed = await weighted.generateText({ model: "r" }, { messages: MESSAGES });
        counts[routed.provider] = (counts[routed.provider] ?? 0) + 1;
      }
      expect(counts).toEqual({ p1: 50, p2: 30, p3: 20 });
    });

    it("least-busy picks the target with the fewest calls in flight across processes", async () => {
      const slow = deployment(
        "p1",
        [{ id: "m" }],
        [{ id: "k", client: createMockProvider({ name: "p1", latencyMs: 400 }) }],
      );
      const routerConfig = config({
        providers: [slow, ...mocks(["p2", "p3"])],
        routes: [routeOf("least-busy")],
        prices: ["p1", "p2", "p3"].map((provider) => price(provider, "m", 0, 0)),
      });
      const busy = router(routerConfig).generateText({ provider: "p1", model: "m" }, { messages: MESSAGES });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const routed = await router(routerConfig).generateText({ model: "r" }, { messages: MESSAGES });
      expect(routed.provider).toBe("p2");
      await busy;
    });

    it("latency prefers the target with the lower moving average", async () => {
      const providers = [
        deployment(
          "p1",
          [{ id: "m" }],
          [{ id: "k", client: createMockProvider({ name: "p1", latencyMs: 60 }) }],
        ),
        deployment(
          "p2",
          [{ id: "m" }],
          [{ id: "k", client: createMockProvider({ name: "p2", latencyMs: 5 }) }],
        ),
        deployment(
          "p3",
          [{ id: "m" }],
          [{ id: "k", client: createMockProvider({ name: "p3", latencyMs: 30 }) }],
        ),
      ];
      const routerConfig = config({
        providers,
        routes: [routeOf("latency")],
        prices: ["p1", "p2", "p3"].map((provider) => price(provider, "m", 0, 0)),
      });
      const latency = router(routerConfig);
      for (const provider of ["p1", "p2", "p3"]) {
        await latency.generateText({ provider, model: "m" }, { messages: MESSAGES });
      }
      const routed = await latency.generateText({ model: "r" }, { messages: MESSAGES });
      expect(routed.provider).toBe("p2");
    });

    it("priority keeps configuration order and a lower tier is only tried after the upper one", async () => {
      const providers = mocks(["p1", "p2", "p3"]);
      const route: RouteSpec = {
        name: "r",
        strategy: "priority",
        targets: [
          { provider: "p3", model: "m", weight: 1, tier: 1 },
          { provider: "p2", model: "m", weight: 1, tier: 0 },
          { provider: "p1", model: "m", weight: 1, tier: 0 },
        ],
      };
      const routed = await router(
        config({ providers, routes: [route], prices: ["p1", "p2", "p3"].map((p) => price(p, "m", 0, 0)) }),
      ).generateText(
        { model: "r" },
        { messages: MESSAGES, providerOptions: { p2: { fail: "provider_unavailable" } } },
      );
      expect(routed.calls.map((call) => `${call.provider}:${call.outcome}`)).toEqual([
        "p2:error",
        "p2:error",
        "p1:ok",
      ]);
    });
  });

  it("routes an image call to a model with the image capability and prices it by size and quality", async () => {
    const providers = [
      {
        ...deployment(
          "openai",
          [{ id: "gpt-4o-mini" }],
          [{ id: "a", client: openAIClient(openai, "openai") }],
        ),
      },
    ];
    const [openaiDeployment] = providers;
    openaiDeployment?.models.set("gpt-image-1", {
      id: "gpt-image-1",
      capabilities: ["image"],
      zeroCost: false,
    });
    const routed = await router(
      config({
        providers,
        prices: [
          price("openai", "gpt-4o-mini", 1, 1),
          {
            provider: "openai",
            model: "gpt-image-1",
            inputPerMillionMicroUsd: 0,
            outputPerMillionMicroUsd: 0,
            perImageMicroUsd: 42_000,
            imagePricesMicroUsd: { "1024x1024/high": 167_000 },
          },
        ],
      }),
    ).generateImage(
      { provider: "openai" },
      { prompt: "a lighthouse", n: 1, size: "1024x1024", quality: "high" },
    );
    expect(routed.model).toBe("gpt-image-1");
    expect(routed.output.images).toHaveLength(1);
    expect(routed.costMicroUsd).toBe(167_000);
    expect(openai.requests.some((request) => request.path === "/v1/images/generations")).toBe(true);
  });

  it("fails an edit at once on a provider that cannot edit images, without calling it", async () => {
    const mock = createMockProvider({ name: "painter" });
    const { editImage: _edit, createImageVariation: _vary, ...cannotEdit } = mock;
    const painter = deployment(
      "painter",
      [{ id: "m" }],
      [{ id: "k", client: { ...cannotEdit, name: "painter" } }],
    );
    painter.models.set("m", { id: "m", capabilities: ["image"], zeroCost: true });
    const error = await router(config({ providers: [painter], prices: [] }))
      .editImage(
        { provider: "painter", model: "m" },
        { prompt: "add a hat", image: { bytes: new Uint8Array([1]), mediaType: "image/png" }, n: 1 },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RouteFailedError);
    expect((error as RouteFailedError).code).toBe("invalid_request");
    expect((error as Error).message).toMatch(/painter cannot edit images/);
  });

  describe("streaming", () => {
    /** A provider whose stream sends `deltas`, then fails if `failAfter` is set. */
    function streamingProvider(name: string, deltas: string[], failAfter?: boolean): Provider {
      const mock = createMockProvider({ name });
      return {
        ...mock,
        name,
        async *streamText() {
          for (const delta of deltas) yield { type: "text-delta" as const, delta };
          if (failAfter)
            throw new ProviderError("provider_unavailable", `${name}: connection reset`, { provider: name });
          yield {
            type: "finish" as const,
            finishReason: "stop" as const,
            usage: { inputTokens: 3, outputTokens: deltas.length },
            model: "m",
          };
        },
      };
    }

    function streamingConfig(first: Provider, second: Provider): RouterConfig {
      return config({
        providers: [
          deployment("p1", [{ id: "m" }], [{ id: "k", client: first }]),
          deployment("p2", [{ id: "m" }], [{ id: "k", client: second }]),
        ],
        prices: [price("p1", "m", 0, 0), price("p2", "m", 0, 0)],
      });
    }

    it("delivers deltas as they come and returns the whole text with usage", async () => {
      const deltas: string[] = [];
      const routed = await router(
        streamingConfig(streamingProvider("p1", ["Hel", "lo"]), streamingProvider("p2", ["no"])),
      ).streamText({}, { messages: MESSAGES }, { onDelta: (delta) => deltas.push(delta) });
      expect(deltas).toEqual(["Hel", "lo"]);
      expect(routed.output).toMatchObject({ text: "Hello", usage: { outputTokens: 2 } });
      expect(routed.provider).toBe("p1");
    });

    it("falls back when a stream fails before its first delta", async () => {
      const deltas: string[] = [];
      const routed = await router(
        streamingConfig(streamingProvider("p1", [], true), streamingProvider("p2", ["fine"])),
      ).streamText({}, { messages: MESSAGES }, { onDelta: (delta) => deltas.push(delta) });
      expect(deltas).toEqual(["fine"]);
      expect(routed.provider).toBe("p2");
    });

    it("does not fall back once output began, so no text is delivered twice", async () => {
      const deltas: string[] = [];
      const error = await router(
        streamingConfig(streamingProvider("p1", ["partial"], true), streamingProvider("p2", ["other"])),
      )
        .streamText({}, { messages: MESSAGES }, { onDelta: (delta) => deltas.push(delta) })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RouteFailedError);
      expect((error as RouteFailedError).retryable).toBe(true);
      expect((error as RouteFailedError).calls).toHaveLength(1);
      expect(deltas).toEqual(["partial"]);
    });
  });

  it("uses the configuration current at the start of each call, so a reload never splits one", async () => {
    let current = primaryOnly();
    const switching = router(() => current);
    expect((await switching.generateText({}, { messages: MESSAGES })).provider).toBe("openai");
    current = config({
      providers: [
        deployment("backup", [{ id: "gpt-4o-mini" }], [{ id: "b", client: openAIClient(backup, "backup") }]),
      ],
      prices: [price("backup", "gpt-4o-mini", 1, 1)],
      version: "v2",
    });
    expect((await switching.generateText({}, { messages: MESSAGES })).provider).toBe("backup");
  });

  it("calls a BYO client instead of a system key, and still records and prices the call", async () => {
    const chat = (server: FakeOpenAIServer) =>
      server.requests.filter((request) => request.path.endsWith("/chat/completions"));
    const byo = openAIClient(backup, "openai", "sk-user-own-key");
    const asked: string[] = [];
    const routed = await router(
      config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
            { accept: true },
          ),
        ],
        prices: [price("openai", "gpt-4o-mini", 150_000, 600_000)],
      }),
    ).generateText(
      {},
      { messages: MESSAGES },
      {
        clientFor: (provider) => {
          asked.push(provider);
          return provider === "openai" ? { client: byo, ownerId: "user-1" } : undefined;
        },
      },
    );
    expect(asked).toEqual(["openai"]);
    expect(routed.keyId).toBe("byo");
    expect(routed.provider).toBe("openai");
    expect(routed.costMicroUsd).toBeGreaterThan(0);
    expect(routed.priceVersion).toBe("2026-11-01");
    expect(routed.calls).toEqual([
      expect.objectContaining({
        seq: 1,
        provider: "openai",
        keyId: "byo",
        outcome: "ok",
        inputTokens: expect.any(Number),
      }),
    ]);
    expect(chat(openai)).toHaveLength(0);
    expect(chat(backup)).toHaveLength(1);
    expect(chat(backup)[0]?.headers.authorization).toBe("Bearer sk-user-own-key");
    // The shared state saw no call on the system key, and one on the user's own window.
    const state = new RedisRouterState({ redis, prefix, breaker: () => BREAKER });
    const [system, own] = await state.keyStats([
      { provider: "openai", keyId: "a", limits: {} },
      { provider: "openai", keyId: userKeyStateId("user-1"), limits: {} },
    ]);
    expect(system).toMatchObject({
      keyId: "a",
      requestsLastMinute: 0,
      tokensLastMinute: 0,
      requestsToday: 0,
    });
    expect(own).toMatchObject({ requestsLastMinute: 1 });
  });

  it("falls back to the next target with system keys when the BYO key is refused, and leaves nothing out of rotation", async () => {
    backup.queueResponse({
      status: 401,
      body: {
        error: { message: "bad key", type: "invalid_request_error", param: null, code: "invalid_api_key" },
      },
    });
    const routed = await router(
      config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
            { accept: true },
          ),
          deployment(
            "anthropic",
            [{ id: "claude-haiku-4-5" }],
            [{ id: "main", client: createAnthropicProvider({ apiKey: "sk-ant", baseURL: anthropic.url }) }],
          ),
        ],
        prices: [price("openai", "gpt-4o-mini", 1, 1), price("anthropic", "claude-haiku-4-5", 1, 1)],
      }),
    ).generateText(
      {},
      { messages: MESSAGES },
      {
        clientFor: (provider) =>
          provider === "openai"
            ? { client: openAIClient(backup, "openai", "sk-bad"), ownerId: "user-1" }
            : undefined,
      },
    );
    expect(
      routed.calls.map((call) => `${call.provider}:${call.keyId}:${call.outcome}:${call.errorCode ?? ""}`),
    ).toEqual(["openai:byo:error:auth_failed", "anthropic:main:ok:"]);
    expect(routed.keyId).toBe("main");
    const state = new RedisRouterState({ redis, prefix, breaker: () => BREAKER });
    const [own] = await state.keyStats([{ provider: "openai", keyId: userKeyStateId("user-1"), limits: {} }]);
    expect(own?.state).toBe("ok");
  });

  describe("users' own keys (BYO)", () => {
    const byoConfig = (limits: KeyLimits = {}) =>
      config({
        providers: [
          deployment(
            "openai",
            [{ id: "gpt-4o-mini" }],
            [{ id: "a", client: openAIClient(openai, "openai") }],
            { accept: true, limits },
          ),
        ],
        prices: [price("openai", "gpt-4o-mini", 1, 1)],
        retry: { maxInlineWaitMs: 100 },
      });
    const own = (ownerId: string) => ({
      clientFor: () => ({ client: openAIClient(backup, "openai", `sk-own-${ownerId}`), ownerId }),
    });
    const chatOn = (server: FakeOpenAIServer) =>
      server.requests.filter((request) => request.path.endsWith("/chat/completions"));

    it("uses the system key, never the user's client, on a provider that does not accept user keys", async () => {
      const routed = await router(primaryOnly()).generateText({}, { messages: MESSAGES }, own("user-1"));
      expect(routed.keyId).toBe("a");
      expect(chatOn(backup)).toHaveLength(0);
      expect(chatOn(openai)).toHaveLength(1);
    });

    it("holds each user's key to the provider's userKeyLimits RPM, in a window of its own", async () => {
      const limited = router(byoConfig({ rpm: 2 }));
      for (let index = 0; index < 2; index += 1) {
        expect((await limited.generateText({}, { messages: MESSAGES }, own("user-1"))).keyId).toBe("byo");
      }
      const third = await limited
        .generateText({}, { messages: MESSAGES }, own("user-1"))
        .catch((caught: unknown) => caught);
      expect(third).toBeInstanceOf(RouteDelayedError);
      expect((third as RouteDelayedError).delayMs).toBeGreaterThan(55_000);
      expect((third as RouteDelayedError).calls.map((call) => call.outcome)).toEqual(["skipped"]);
      expect(chatOn(backup)).toHaveLength(2);
      // Another user's key has its own window.
      expect((await limited.generateText({}, { messages: MESSAGES }, own("user-2"))).keyId).toBe("byo");
      expect(chatOn(backup)).toHaveLength(3);
    });

    it("opens the circuit on an upstream failing on users' keys, and then calls it no more, on any key", async () => {
      backup.setHandler(() => ({ status: 503, body: openAIErrorBodies.serverError }));
      const shared = router(byoConfig());
      const failing = await shared
        .generateText({}, { messages: MESSAGES }, own("user-1"))
        .catch((caught: unknown) => caught);
      expect((failing as RouteFailedError).code).toBe("provider_unavailable");
      await shared.generateText({}, { messages: MESSAGES }, own("user-2")).catch(() => {});
      // failureThreshold 3: the circuit is open now; neither users' keys nor the system key reach it.
      const callsBefore = chatOn(backup).length;
      expect(callsBefore).toBeGreaterThanOrEqual(3);
      const blocked = await shared
        .generateText({}, { messages: MESSAGES }, own("user-3"))
        .catch((caught: unknown) => caught);
      expect((blocked as RouteFailedError | RouteDelayedError).calls[0]).toMatchObject({
        outcome: "skipped",
        errorCode: "provider_unavailable",
      });
      expect(chatOn(backup)).toHaveLength(callsBefore);
      const state = new RedisRouterState({ redis, prefix, breaker: () => BREAKER });
      expect((await state.targetStats([{ provider: "openai", model: "gpt-4o-mini" }]))[0]?.circuit).toBe(
        "open",
      );
    });
  });
});
