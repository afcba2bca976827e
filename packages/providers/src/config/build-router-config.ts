import { createAnthropicProvider } from "../anthropic/anthropic-provider.ts";
import { createGeminiProvider } from "../gemini/gemini-provider.ts";
import { createInMemoryFailureCounter, type FailureCounter } from "../mock/failure-counter.ts";
import { createMockProvider } from "../mock/mock-provider.ts";
import { createOpenAIProvider, type ImageDownloadOptions } from "../openai/openai-provider.ts";
import { createPriceCatalog, type PriceEntry } from "../price-catalog.ts";
import type { Provider } from "../provider.ts";
import type { ModelSpec, ProviderDeployment, ProviderKey, RouterConfig } from "../router/types.ts";
import { apiKeyHint } from "./api-key-hint.ts";
import { toPriceEntries } from "./price-entries.ts";
import { ProvidersConfigError, type ProvidersConfigIssue } from "./providers-config-error.ts";
import type { KeySettings, ProviderSettings, ProvidersFile } from "./providers-file.ts";
import { shortHash } from "./short-hash.ts";

/** Options for {@link buildRouterConfig}. */
export interface BuildRouterConfigOptions {
  /** The file's text (or any text standing for the configuration), hashed into `version`. */
  source: string;
  /**
   * Where mock providers count scripted failures (`failTimes`). The worker passes
   * a Redis-backed one shared by every process; default: one in-memory counter
   * shared by the mocks of this config.
   */
  mockFailureCounter?: FailureCounter;
  /** Names the configuration in errors (the file path). Default `providers file`. */
  origin?: string;
  /** The fetch the OpenAI and Anthropic adapters use (the Gemini SDK takes none). */
  fetch?: typeof fetch;
  /** How the OpenAI adapters download image URLs (SSRF allowlist, byte cap, timeout). */
  imageDownload?: ImageDownloadOptions;
  /**
   * Prices with a version of their own, by `provider/model` (the database's price
   * rows, decision 0023): a cost made with one records it as its price version.
   */
  priceVersions?: Readonly<Record<string, string>>;
}

/** The API key sent by keyless OpenAI-compatible servers (Ollama, vLLM), which want some value. */
const KEYLESS_API_KEY = "none";

/**
 * Builds the router's configuration from a validated providers file: one adapter
 * client per key (SDK retries are off in every adapter), the models, the price
 * catalog versioned by `priceVersion`, the routes and the policies. The result is
 * new and independent of any earlier one, so a reload can swap it in whole.
 */
export function buildRouterConfig(file: ProvidersFile, options: BuildRouterConfigOptions): RouterConfig {
  const failureCounter = options.mockFailureCounter ?? createInMemoryFailureCounter();
  const issues: ProvidersConfigIssue[] = [];
  const providers = new Map<string, ProviderDeployment>();
  file.providers.forEach((provider, providerIndex) => {
    const keys: ProviderKey[] = [];
    provider.keys.forEach((key, keyIndex) => {
      try {
        keys.push({
          id: key.id,
          priority: key.priority,
          limits: {
            ...(key.rpm === undefined ? {} : { rpm: key.rpm }),
            ...(key.tpm === undefined ? {} : { tpm: key.tpm }),
            ...(key.rpd === undefined ? {} : { rpd: key.rpd }),
          },
          client: createClient(provider, key, failureCounter, options),
          hint: key.apiKey === undefined ? "(no key)" : apiKeyHint(key.apiKey),
        });
      } catch (error) {
        // Adapters validate their options too; their messages never include the key.
        issues.push({
          path: `providers[${providerIndex}].keys[${keyIndex}]`,
          message: error instanceof Error ? error.message : String(error),
        });
      }
    });
    providers.set(provider.name, {
      name: provider.name,
      type: provider.type,
      keys,
      acceptsUserKeys: provider.acceptsUserKeys,
      ...(provider.acceptsUserKeys
        ? {
            // A user's key never travels with the operator's headers or organization.
            clientForKey: (apiKey: string) =>
              createClient(
                withoutOperatorCredentials(provider),
                { id: "byo", priority: 1, apiKey },
                failureCounter,
                options,
              ),
            userKeyLimits: provider.userKeyLimits ?? {},
          }
        : {}),
      models: new Map(
        provider.models.map((model): [string, ModelSpec] => [
          model.id,
          {
            id: model.id,
            capabilities: [...model.capabilities],
            ...(model.contextWindow === undefined ? {} : { contextWindow: model.contextWindow }),
            ...(model.maxOutputTokens === undefined ? {} : { maxOutputTokens: model.maxOutputTokens }),
            ...(model.image === undefined ? {} : { image: model.image }),
            zeroCost: model.zeroCost,
          },
        ]),
      ),
      defaultModel: provider.defaultModel,
    });
  });
  if (issues.length > 0) throw new ProvidersConfigError(options.origin ?? "providers file", issues);

  return {
    version: shortHash(options.source),
    priceVersion: file.priceVersion,
    providers,
    routes: new Map(
      file.routes.map((route) => [
        route.name,
        {
          name: route.name,
          strategy: route.strategy,
          targets: route.targets.map((target) => ({ ...target })),
        },
      ]),
    ),
    defaultRoute: file.defaultRoute,
    retry: { ...file.retry },
    breaker: { ...file.breaker },
    // Only the file's prices: a model it does not price is refused, not priced from built-in defaults.
    prices: createPriceCatalog(withPriceVersions(toPriceEntries(file.providers), options.priceVersions), {
      includeDefaults: false,
      version: file.priceVersion,
    }),
  };
}

function createClient(
  provider: ProviderSettings,
  key: KeySettings,
  failureCounter: FailureCounter,
  { fetch: fetchFunction, imageDownload }: Pick<BuildRouterConfigOptions, "fetch" | "imageDownload">,
): Provider {
  const common = {
    name: provider.name,
    defaultModel: provider.defaultModel,
    ...(provider.baseUrl === undefined ? {} : { baseURL: provider.baseUrl }),
    ...(provider.timeoutMs === undefined ? {} : { timeoutMs: provider.timeoutMs }),
  };
  switch (provider.type) {
    case "mock":
      return createMockProvider({
        name: provider.name,
        defaultModel: provider.defaultModel,
        failureCounter,
        ...(provider.options.latencyMs === undefined ? {} : { latencyMs: provider.options.latencyMs }),
        ...(provider.options.failureRate === undefined ? {} : { failureRate: provider.options.failureRate }),
      });
    case "openai":
    case "openai-compatible": {
      const { organization, useMaxCompletionTokens, headers } = provider.options;
      return createOpenAIProvider({
        ...common,
        apiKey: key.apiKey ?? KEYLESS_API_KEY,
        ...(organization === undefined ? {} : { organization }),
        ...(useMaxCompletionTokens === undefined ? {} : { useMaxCompletionTokens }),
        ...(headers === undefined ? {} : { defaultHeaders: headers }),
        ...(fetchFunction === undefined ? {} : { fetch: fetchFunction }),
        ...(imageDownload === undefined ? {} : { imageDownload }),
        batchApi: provider.type === "openai",
      });
    }
    case "anthropic": {
      const { defaultMaxTokens, headers } = provider.options;
      return createAnthropicProvider({
        ...common,
        apiKey: requireApiKey(key),
        ...(defaultMaxTokens === undefined ? {} : { defaultMaxTokens }),
        ...(headers === undefined ? {} : { defaultHeaders: headers }),
        ...(fetchFunction === undefined ? {} : { fetch: fetchFunction }),
      });
    }
    case "gemini": {
      const { headers } = provider.options;
      return createGeminiProvider({
        ...common,
        apiKey: requireApiKey(key),
        ...(headers === undefined ? {} : { defaultHeaders: headers }),
      });
    }
  }
}

/**
 * The provider as a user's own key sees it: without the operator's `headers`
 * (which may carry the operator's credentials) and `organization` (which would
 * bill the operator's organization).
 */
function withoutOperatorCredentials(provider: ProviderSettings): ProviderSettings {
  switch (provider.type) {
    case "mock":
      return provider;
    case "openai":
    case "openai-compatible": {
      const { headers: _headers, organization: _organization, ...options } = provider.options;
      return { ...provider, options };
    }
    case "anthropic":
    case "gemini": {
      const { headers: _headers, ...options } = provider.options;
      return { ...provider, options } as ProviderSettings;
    }
  }
}

function requireApiKey(key: KeySettings): string {
  // The schema requires a key for these types; this guards hand-built files.
  if (key.apiKey === undefined) throw new TypeError(`key "${key.id}" needs an apiKey`);
  return key.apiKey;
}

function withPriceVersions(
  entries: PriceEntry[],
  versions: Readonly<Record<string, string>> | undefined,
): PriceEntry[] {
  if (versions === undefined) return entries;
  return entries.map((entry) => {
    const version = versions[`${entry.provider}/${entry.model}`];
    return version === undefined ? entry : { ...entry, version };
  });
}
