import { GenqError } from "@genq/core";
import type { Capability, RouteTarget, Routing, StrategyName } from "./types.ts";

/** What a job asks for: a provider, a model or route name, both, or neither. */
export interface RouteSelection {
  provider?: string;
  /** A model id, or the name of a configured route. */
  model?: string;
  capability: Capability;
}

/** The targets of one routed call, tier by tier, and how to order each tier. */
export interface RoutePlan {
  /** The route's name, or a description of an explicit choice (`openai/gpt-4o`). */
  name: string;
  strategy: StrategyName;
  tiers: RouteTarget[][];
}

/**
 * Turns a job's selection into a plan, or refuses it with `invalid_request`
 * (not retryable: the same job will not become routable on another attempt).
 * - provider (+ model): exactly that provider, its default model when none is named;
 * - model naming a route: the route's targets that have the capability;
 * - model naming a model: every provider that offers it, in configuration order;
 * - neither: the default route (or, for a capability it lacks, the first route that has it).
 * Pricing fails closed: a model with no price that is not `zeroCost` is refused.
 */
export function resolveTargets(config: Routing, selection: RouteSelection): RoutePlan {
  const { provider, model, capability } = selection;
  if (provider !== undefined) {
    const deployment = config.providers.get(provider);
    if (deployment === undefined) {
      throw refuse(
        `provider ${provider} is not configured; configured: ${[...config.providers.keys()].join(", ")}`,
        {
          provider,
          configured: [...config.providers.keys()],
        },
      );
    }
    const chosen = model || defaultModelFor(config, provider, capability);
    if (chosen === undefined) {
      throw refuse(`provider ${provider} has no model that can do ${capability}; name one in "model"`, {
        provider,
      });
    }
    assertRoutable(config, provider, chosen, capability);
    return { name: `${provider}/${chosen}`, strategy: "priority", tiers: [[target(provider, chosen)]] };
  }

  if (model) {
    const route = config.routes.get(model);
    if (route !== undefined) {
      const capable = route.targets.filter((candidate) => hasCapability(config, candidate, capability));
      if (capable.length === 0) {
        throw refuse(`route ${model} has no target that can do ${capability}`, { route: model });
      }
      return { name: route.name, strategy: route.strategy, tiers: groupByTier(capable) };
    }
    const offering = [...config.providers.values()].filter((deployment) => deployment.models.has(model));
    if (offering.length === 0) {
      throw refuse(
        `model ${model} is not configured; name a provider with it, or one of the models or routes: ${describeChoices(config)}`,
        { model },
      );
    }
    for (const deployment of offering) assertRoutable(config, deployment.name, model, capability);
    return {
      name: model,
      strategy: "priority",
      tiers: [offering.map((deployment) => target(deployment.name, model))],
    };
  }

  const preferred = config.routes.get(config.defaultRoute);
  const routes =
    preferred === undefined ? [...config.routes.values()] : [preferred, ...config.routes.values()];
  for (const route of routes) {
    const capable = route.targets.filter((candidate) => hasCapability(config, candidate, capability));
    if (capable.length > 0)
      return { name: route.name, strategy: route.strategy, tiers: groupByTier(capable) };
  }
  for (const deployment of config.providers.values()) {
    const chosen = defaultModelFor(config, deployment.name, capability);
    if (chosen !== undefined) {
      return {
        name: `${deployment.name}/${chosen}`,
        strategy: "priority",
        tiers: [[target(deployment.name, chosen)]],
      };
    }
  }
  throw refuse(`no configured provider can do ${capability}`, { capability });
}

function defaultModelFor(config: Routing, provider: string, capability: Capability): string | undefined {
  const deployment = config.providers.get(provider);
  if (deployment === undefined) return undefined;
  const preferred =
    deployment.defaultModel === undefined ? undefined : deployment.models.get(deployment.defaultModel);
  if (preferred?.capabilities.includes(capability)) return preferred.id;
  for (const spec of deployment.models.values()) {
    if (spec.capabilities.includes(capability)) return spec.id;
  }
  return undefined;
}

function hasCapability(config: Routing, candidate: RouteTarget, capability: Capability): boolean {
  const spec = config.providers.get(candidate.provider)?.models.get(candidate.model);
  return spec?.capabilities.includes(capability) ?? false;
}

/**
 * A model the provider lists must have the capability; an unlisted one is allowed
 * only when the price catalog prices it (a dated snapshot of a listed model).
 */
function assertRoutable(config: Routing, provider: string, model: string, capability: Capability): void {
  const spec = config.providers.get(provider)?.models.get(model);
  if (spec !== undefined) {
    if (!spec.capabilities.includes(capability)) {
      throw refuse(
        `model ${provider}/${model} cannot do ${capability} (it can do: ${spec.capabilities.join(", ")})`,
        {
          provider,
          model,
        },
      );
    }
    if (spec.zeroCost || config.prices.find(provider, model) !== undefined) return;
  } else if (config.prices.find(provider, model) !== undefined) {
    return;
  }
  throw refuse(
    `model ${provider}/${model} has no price; list it in the providers file with a price (or zeroCost: true for local models)`,
    { provider, model },
  );
}

function groupByTier(targets: RouteTarget[]): RouteTarget[][] {
  const tiers = new Map<number, RouteTarget[]>();
  for (const candidate of targets) {
    const tier = tiers.get(candidate.tier) ?? [];
    tier.push(candidate);
    tiers.set(candidate.tier, tier);
  }
  return [...tiers.entries()].sort(([a], [b]) => a - b).map(([, tier]) => tier);
}

function describeChoices(config: Routing): string {
  const models = new Set<string>();
  for (const deployment of config.providers.values()) {
    for (const id of deployment.models.keys()) models.add(id);
  }
  return [...models, ...config.routes.keys()].join(", ");
}

function target(provider: string, model: string): RouteTarget {
  return { provider, model, weight: 1, tier: 0 };
}

function refuse(message: string, details: Record<string, unknown>): GenqError {
  return new GenqError("invalid_request", message, { details });
}
