import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import anthropicAuthentication from "../anthropic/__fixtures__/error-authentication.json" with {
  type: "json",
};
import anthropicCreditBalance from "../anthropic/__fixtures__/error-credit-balance.json" with {
  type: "json",
};
import anthropicNotFound from "../anthropic/__fixtures__/error-not-found.json" with { type: "json" };
import anthropicPermission from "../anthropic/__fixtures__/error-permission.json" with { type: "json" };
import { createAnthropicProvider } from "../anthropic/index.ts";
import geminiApiKeyInvalid from "../gemini/__fixtures__/error-api-key-invalid.json" with { type: "json" };
import geminiApiKeyLeaked from "../gemini/__fixtures__/error-api-key-leaked.json" with { type: "json" };
import geminiCreditsDepleted from "../gemini/__fixtures__/error-credits-depleted.json" with { type: "json" };
import geminiModelNotFound from "../gemini/__fixtures__/error-model-not-found.json" with { type: "json" };
import geminiPermissionDenied from "../gemini/__fixtures__/error-permission-denied-model.json" with {
  type: "json",
};
import { createGeminiProvider } from "../gemini/index.ts";
import openAIInsufficientQuota from "../openai/__fixtures__/error-insufficient-quota.json" with {
  type: "json",
};
import openAIInvalidApiKey from "../openai/__fixtures__/error-invalid-api-key.json" with { type: "json" };
import openAIMissingScopes from "../openai/__fixtures__/error-missing-scopes.json" with { type: "json" };
import openAIModelNotFound from "../openai/__fixtures__/error-model-not-found.json" with { type: "json" };
import openAIOrganizationNotVerified from "../openai/__fixtures__/error-organization-not-verified.json" with {
  type: "json",
};
import { createOpenAIProvider } from "../openai/index.ts";
import { createPriceCatalog } from "../price-catalog.ts";
import type { Provider } from "../provider.ts";
import {
  type FakeAnthropicServer,
  type FakeGeminiServer,
  type FakeOpenAIServer,
  startFakeAnthropicServer,
  startFakeGeminiServer,
  startFakeOpenAIServer,
} from "../testing/index.ts";
import { ProviderRouter, RouteFailedError } from "./router.ts";
import { RedisRouterState } from "./state/redis-router-state.ts";
import type { BreakerPolicy, ProviderType, RetryPolicy, RouterConfig } from "./types.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const MESSAGES = [{ role: "user" as const, content: "hello keys" }];
const RETRY: RetryPolicy = {
  maxCalls: 4,
  perTargetAttempts: 2,
  baseDelayMs: 10,
  maxDelayMs: 50,
  maxInlineWaitMs: 1_000,
  callTimeoutMs: 5_000,
  deadlineMs: 20_000,
};

type Family = "openai" | "anthropic" | "gemini";
const MODELS: Record<Family, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-haiku-4-5",
  gemini: "gemini-2.5-flash",
};

/** An error a provider sends, as its fixture, and whether it is about the key or about the request. */
interface ErrorCase {
  family: Family;
  name: string;
  status: number;
  body: unknown;
  code: string;
}

const REQUEST_SCOPED: ErrorCase[] = [
  {
    family: "openai",
    name: "403 organization must be verified",
    status: 403,
    body: openAIOrganizationNotVerified,
    code: "invalid_request",
  },
  {
    family: "openai",
    name: "401 missing scopes",
    status: 401,
    body: openAIMissingScopes,
    code: "invalid_request",
  },
  {
    family: "openai",
    name: "404 model_not_found",
    status: 404,
    body: openAIModelNotFound,
    code: "invalid_request",
  },
  {
    family: "anthropic",
    name: "403 permission_error",
    status: 403,
    body: anthropicPermission,
    code: "invalid_request",
  },
  {
    family: "anthropic",
    name: "404 not_found_error",
    status: 404,
    body: anthropicNotFound,
    code: "invalid_request",
  },
  {
    family: "gemini",
    name: "403 PERMISSION_DENIED on a model",
    status: 403,
    body: geminiPermissionDenied,
    code: "invalid_request",
  },
  {
    family: "gemini",
    name: "404 NOT_FOUND model",
    status: 404,
    body: geminiModelNotFound,
    code: "invalid_request",
  },
];

const KEY_SCOPED: ErrorCase[] = [
  {
    family: "openai",
    name: "401 invalid_api_key",
    status: 401,
    body: openAIInvalidApiKey,
    code: "auth_failed",
  },
  {
    family: "openai",
    name: "429 insufficient_quota",
    status: 429,
    body: openAIInsufficientQuota,
    code: "credit_exhausted",
  },
  {
    family: "anthropic",
    name: "401 authentication_error",
    status: 401,
    body: anthropicAuthentication,
    code: "auth_failed",
  },
  {
    family: "anthropic",
    name: "400 credit balance too low",
    status: 400,
    body: anthropicCreditBalance,
    code: "credit_exhausted",
  },
  {
    family: "gemini",
    name: "400 API_KEY_INVALID",
    status: 400,
    body: geminiApiKeyInvalid,
    code: "auth_failed",
  },
  {
    family: "gemini",
    name: "403 API key leaked",
    status: 403,
    body: geminiApiKeyLeaked,
    code: "auth_failed",
  },
  {
    family: "gemini",
    name: "429 prepayment credits depleted",
    status: 429,
    body: geminiCreditsDepleted,
    code: "credit_exhausted",
  },
];

/** The secret a request carried, whichever header its SDK puts it in. */
function keyOf(headers: Record<string, string | string[] | undefined>): string {
  const value = headers.authorization ?? headers["x-api-key"] ?? headers["x-goog-api-key"] ?? "";
  return String(value).replace(/^Bearer /, "");
}

interface FakeServer {
  url: string;
  requests: Array<{ path: string; headers: Record<string, string | string[] | undefined> }>;
  setHandler(
    handler: ((request: { headers: Record<string, string | string[] | undefined> }) => unknown) | undefined,
  ): void;
  reset(): void;
  close(): Promise<void>;
}

describe("which provider errors take a system key out of rotation", () => {
  let redis: Redis;
  let prefix: string;
  let servers: Record<Family, FakeServer>;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const [openai, anthropic, gemini]: [FakeOpenAIServer, FakeAnthropicServer, FakeGeminiServer] =
      await Promise.all([startFakeOpenAIServer(), startFakeAnthropicServer(), startFakeGeminiServer()]);
    servers = {
      openai: openai as unknown as FakeServer,
      anthropic: anthropic as unknown as FakeServer,
      gemini: gemini as unknown as FakeServer,
    };
  });

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    for (const server of Object.values(servers)) server.reset();
  });

  afterAll(async () => {
    redis.disconnect();
    await Promise.all(Object.values(servers).map((server) => server.close()));
  });

  function client(family: Family, apiKey: string): Provider {
    const baseURL = servers[family].url;
    switch (family) {
      case "openai":
        return createOpenAIProvider({ name: family, apiKey, baseURL });
      case "anthropic":
        return createAnthropicProvider({ name: family, apiKey, baseURL });
      case "gemini":
        return createGeminiProvider({ name: family, apiKey, baseURL });
    }
  }

  /** One provider with two keys, `main` before `spare`; the breaker's key retry time is `keyRetryMs`. */
  function setup(family: Family, keyRetryMs = 60_000) {
    prefix = `test-key-errors-${randomBytes(4).toString("hex")}`;
    const breaker: BreakerPolicy = {
      failureThreshold: 5,
      windowMs: 60_000,
      openMs: 1_000,
      halfOpenProbes: 1,
      keyRetryMs,
    };
    const model = MODELS[family];
    const config: RouterConfig = {
      version: "test",
      priceVersion: "test",
      providers: new Map([
        [
          family,
          {
            name: family,
            type: family satisfies ProviderType,
            acceptsUserKeys: false,
            keys: [
              {
                id: "main",
                priority: 1,
                limits: {},
                client: client(family, "sk-main-key-0001"),
                hint: "…0001",
              },
              {
                id: "spare",
                priority: 2,
                limits: {},
                client: client(family, "sk-spare-key-0002"),
                hint: "…0002",
              },
            ],
            models: new Map([[model, { id: model, capabilities: ["text" as const], zeroCost: true }]]),
            defaultModel: model,
          },
        ],
      ]),
      routes: new Map([
        [
          "default",
          {
            name: "default",
            strategy: "priority",
            targets: [{ provider: family, model, weight: 1, tier: 0 }],
          },
        ],
      ]),
      defaultRoute: "default",
      retry: RETRY,
      breaker,
      prices: createPriceCatalog([], { includeDefaults: false }),
    };
    const state = new RedisRouterState({ redis, prefix, breaker: () => breaker });
    const router = new ProviderRouter({ config: () => config, state });
    const keyState = async (keyId: string) =>
      (await state.keyStats([{ provider: family, keyId, limits: {} }]))[0];
    return { router, state, keyState };
  }

  /** Answers every call on the main key with `errorCase`; the spare key works. */
  function failMainKeyWith(errorCase: ErrorCase): void {
    servers[errorCase.family].setHandler((request) =>
      keyOf(request.headers) === "sk-main-key-0001"
        ? { status: errorCase.status, body: errorCase.body }
        : undefined,
    );
  }

  const callKeys = (family: Family) =>
    servers[family].requests
      .filter((request) => !request.path.includes("/models?") && request.path !== "/v1/models")
      .map((request) => (keyOf(request.headers) === "sk-main-key-0001" ? "main" : "spare"));

  it.each(REQUEST_SCOPED.map((errorCase) => [`${errorCase.family} ${errorCase.name}`, errorCase] as const))(
    "fails the call with invalid_request and leaves the key in rotation on %s",
    async (_, errorCase) => {
      const { router, keyState } = setup(errorCase.family);
      failMainKeyWith(errorCase);
      const error = await router.generateText({}, { messages: MESSAGES }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RouteFailedError);
      expect(error).toMatchObject({ code: errorCase.code, retryable: false });
      expect((error as RouteFailedError).calls.map((call) => call.keyId)).toEqual(["main"]);
      expect(await keyState("main")).toMatchObject({ state: "ok" });

      // The key keeps serving every other request.
      servers[errorCase.family].setHandler(undefined);
      const next = await router.generateText({}, { messages: MESSAGES });
      expect(next.keyId).toBe("main");
    },
  );

  it.each(KEY_SCOPED.map((errorCase) => [`${errorCase.family} ${errorCase.name}`, errorCase] as const))(
    "takes the key out until its retry time and moves on to the next key on %s",
    async (_, errorCase) => {
      const { router, keyState } = setup(errorCase.family);
      failMainKeyWith(errorCase);
      const before = Date.now();
      const routed = await router.generateText({}, { messages: MESSAGES });
      expect(routed.calls.map((call) => `${call.keyId}:${call.errorCode ?? "ok"}`)).toEqual([
        `main:${errorCase.code}`,
        "spare:ok",
      ]);
      const main = await keyState("main");
      expect(main).toMatchObject({ state: "exhausted", reason: expect.stringContaining(errorCase.code) });
      expect(main?.until).toBeGreaterThanOrEqual(before + 60_000);
      expect(main?.until).toBeLessThanOrEqual(Date.now() + 60_000 + 1_000);

      await router.generateText({}, { messages: MESSAGES });
      expect(callKeys(errorCase.family)).toEqual(["main", "spare", "spare"]);
    },
  );

  it("probes an exhausted key with one call after its retry time and puts it back when the key works again", async () => {
    const { router, keyState } = setup("openai", 300);
    failMainKeyWith(KEY_SCOPED[0]!);
    await router.generateText({}, { messages: MESSAGES });
    expect(await keyState("main")).toMatchObject({ state: "exhausted" });

    // Still refused after the retry time: the probe re-arms it, and the call moves on to the spare key.
    await new Promise((resolve) => setTimeout(resolve, 350));
    const refused = await router.generateText({}, { messages: MESSAGES });
    expect(refused.calls.map((call) => `${call.keyId}:${call.errorCode ?? "ok"}`)).toEqual([
      "main:auth_failed",
      "spare:ok",
    ]);
    expect(await keyState("main")).toMatchObject({ state: "exhausted" });
    expect((await router.generateText({}, { messages: MESSAGES })).keyId).toBe("spare");

    // The operator fixed the key upstream: the next probe succeeds and the key is back.
    servers.openai.setHandler(undefined);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await router.generateText({}, { messages: MESSAGES })).keyId).toBe("main");
    expect(await keyState("main")).toMatchObject({ state: "ok" });
    expect((await router.generateText({}, { messages: MESSAGES })).keyId).toBe("main");
    expect(callKeys("openai")).toEqual(["main", "spare", "main", "spare", "spare", "main", "main"]);
  });
});
