import type { Redis } from "ioredis";
import type { PriceEntry } from "../price-catalog.ts";
import type { KeyStats, RouterConfig, RouterState, TargetStats } from "./types.ts";

/**
 * What the workers run with, minus every secret: published to Redis by each
 * worker at start and after each reload, so the API (which holds no provider
 * keys) can show operators the providers, models, keys and their live state.
 */
export interface RouterCatalog {
  version: string;
  priceVersion: string;
  defaultRoute: string;
  publishedAt: string;
  providers: Array<{
    name: string;
    type: string;
    defaultModel?: string;
    /** Whether users may store their own key for this provider (absent in catalogs of older workers: no). */
    acceptsUserKeys?: boolean;
    keys: Array<{
      id: string;
      priority: number;
      hint: string;
      limits: { rpm?: number; tpm?: number; rpd?: number };
    }>;
    models: Array<{
      id: string;
      capabilities: string[];
      contextWindow?: number;
      maxOutputTokens?: number;
      zeroCost: boolean;
      image?: { sizes?: string[]; qualities?: string[]; maxImages?: number };
    }>;
  }>;
  routes: Array<{
    name: string;
    strategy: string;
    targets: Array<{ provider: string; model: string; weight: number; tier: number }>;
  }>;
  /**
   * Every price the workers charge with (list prices, not secrets), so the API can
   * plan a job's worst-case cost at admission. Absent in catalogs of older workers.
   */
  prices?: PriceEntry[];
}

/** The secret-free description of a configuration. */
export function describeRouterConfig(config: RouterConfig, now: Date = new Date()): RouterCatalog {
  return {
    version: config.version,
    priceVersion: config.priceVersion,
    defaultRoute: config.defaultRoute,
    publishedAt: now.toISOString(),
    providers: [...config.providers.values()].map((deployment) => ({
      name: deployment.name,
      type: deployment.type,
      ...(deployment.defaultModel === undefined ? {} : { defaultModel: deployment.defaultModel }),
      acceptsUserKeys: deployment.acceptsUserKeys,
      keys: deployment.keys.map((key) => ({
        id: key.id,
        priority: key.priority,
        hint: key.hint,
        limits: key.limits,
      })),
      models: [...deployment.models.values()].map((model) => ({
        id: model.id,
        capabilities: [...model.capabilities],
        ...(model.contextWindow === undefined ? {} : { contextWindow: model.contextWindow }),
        ...(model.maxOutputTokens === undefined ? {} : { maxOutputTokens: model.maxOutputTokens }),
        ...(model.image === undefined ? {} : { image: model.image }),
        zeroCost: model.zeroCost,
      })),
    })),
    routes: [...config.routes.values()].map((route) => ({
      name: route.name,
      strategy: route.strategy,
      targets: route.targets.map((target) => ({ ...target })),
    })),
    prices: config.prices.entries(),
  };
}

function catalogKey(prefix: string): string {
  return `${prefix}:router:catalog`;
}

/** Publishes the configuration's description for the API (last writer wins; all workers share one file). */
export async function publishRouterCatalog(
  redis: Redis,
  prefix: string,
  config: RouterConfig,
): Promise<void> {
  await redis.set(catalogKey(prefix), JSON.stringify(describeRouterConfig(config)));
}

/** The last published catalog, or undefined when no worker has published one yet. */
export async function readRouterCatalog(redis: Redis, prefix: string): Promise<RouterCatalog | undefined> {
  const text = await redis.get(catalogKey(prefix));
  return text === null ? undefined : (JSON.parse(text) as RouterCatalog);
}

/** One provider's health as the admin API reports it. */
export interface ProviderHealth {
  name: string;
  type: string;
  acceptsUserKeys: boolean;
  models: Array<TargetStats & { capabilities: string[]; zeroCost: boolean }>;
  keys: Array<
    KeyStats & { priority: number; hint: string; limits: { rpm?: number; tpm?: number; rpd?: number } }
  >;
}

/** Joins the published catalog with live state: per provider/model circuits and latency, per key limits and state. */
export async function providerHealth(
  catalog: RouterCatalog,
  state: Pick<RouterState, "targetStats" | "keyStats">,
): Promise<ProviderHealth[]> {
  const targets = catalog.providers.flatMap((provider) =>
    provider.models.map((model) => ({ provider: provider.name, model: model.id })),
  );
  const keys = catalog.providers.flatMap((provider) =>
    provider.keys.map((key) => ({ provider: provider.name, keyId: key.id, limits: key.limits })),
  );
  const [targetStats, keyStats] = await Promise.all([state.targetStats(targets), state.keyStats(keys)]);
  return catalog.providers.map((provider) => ({
    name: provider.name,
    type: provider.type,
    acceptsUserKeys: provider.acceptsUserKeys === true,
    models: provider.models.map((model) => {
      const stats = targetStats.find((entry) => entry.provider === provider.name && entry.model === model.id);
      if (stats === undefined) throw new Error(`no stats for ${provider.name}/${model.id}`);
      return { ...stats, capabilities: model.capabilities, zeroCost: model.zeroCost };
    }),
    keys: provider.keys.map((key) => {
      const stats = keyStats.find((entry) => entry.provider === provider.name && entry.keyId === key.id);
      if (stats === undefined) throw new Error(`no stats for key ${provider.name}/${key.id}`);
      return { ...stats, priority: key.priority, hint: key.hint, limits: key.limits };
    }),
  }));
}
