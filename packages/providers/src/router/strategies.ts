import type { PriceCatalog, PricedImage } from "../price-catalog.ts";
import type { RouteTarget, StrategyName, TargetStats } from "./types.ts";

/** What a strategy may look at to order one tier of targets. */
export interface StrategyContext {
  prices: PriceCatalog;
  /** Live figures by `provider/model`; present for `latency` and `least-busy`. */
  stats?: Map<string, TargetStats>;
  /** Smooth weighted round-robin state, kept by the router per tier. */
  roundRobin: WeightedRoundRobin;
  /** The call's expected size, for the `cost` strategy; `image` is the size and quality of image calls. */
  estimate: { inputTokens: number; outputTokens: number; images: number; image?: PricedImage };
}

/** The strategies that need live figures from the shared state before ordering. */
export const STRATEGIES_NEEDING_STATS: ReadonlySet<StrategyName> = new Set(["latency", "least-busy"]);

/** `provider/model`, the key of a target's figures. */
export function targetKey(target: { provider: string; model: string }): string {
  return `${target.provider}/${target.model}`;
}

/**
 * Orders one tier: the first target is tried first, the rest are the same-tier
 * fallbacks in order. Sorting is stable, so ties keep configuration order.
 */
export function orderTier(
  strategy: StrategyName,
  tier: RouteTarget[],
  context: StrategyContext,
  tierKey: string,
): RouteTarget[] {
  switch (strategy) {
    case "priority":
      return [...tier];
    case "cost":
      return sortBy(tier, (target) => estimatedCost(target, context));
    case "latency":
      // Targets without figures yet sort first, so every target gets measured.
      return sortBy(tier, (target) => context.stats?.get(targetKey(target))?.ewmaLatencyMs ?? 0);
    case "least-busy":
      return sortBy(tier, (target) => context.stats?.get(targetKey(target))?.inFlight ?? 0);
    case "weighted": {
      const first = context.roundRobin.pick(tierKey, tier);
      return [first, ...tier.filter((target) => target !== first).sort((a, b) => b.weight - a.weight)];
    }
  }
}

function estimatedCost(target: RouteTarget, context: StrategyContext): number {
  const entry = context.prices.find(target.provider, target.model);
  // An unpriced target never gets here (routing fails closed); sort it last if it does.
  if (entry === undefined) return Number.POSITIVE_INFINITY;
  const { inputTokens, outputTokens, images, image } = context.estimate;
  const perImage = images > 0 ? (context.prices.imagePrice(target.provider, target.model, image) ?? 0) : 0;
  return (
    inputTokens * entry.inputPerMillionMicroUsd +
    outputTokens * entry.outputPerMillionMicroUsd +
    images * perImage * 1_000_000
  );
}

function sortBy<T>(items: T[], score: (item: T) => number): T[] {
  return items
    .map((item, index) => ({ item, index, score: score(item) }))
    .sort((a, b) => a.score - b.score || a.index - b.index)
    .map((entry) => entry.item);
}

/**
 * Smooth weighted round-robin (nginx's algorithm): over any run of picks each
 * target is chosen in proportion to its weight, and picks are spread out rather
 * than bunched (weights 5/1/1 give a a b a c a a, not a a a a a b c).
 */
export class WeightedRoundRobin {
  readonly #current = new Map<string, Map<string, number>>();

  pick(tierKey: string, tier: RouteTarget[]): RouteTarget {
    let weights = this.#current.get(tierKey);
    if (weights === undefined) {
      weights = new Map();
      this.#current.set(tierKey, weights);
    }
    let total = 0;
    let best: RouteTarget | undefined;
    let bestWeight = Number.NEGATIVE_INFINITY;
    for (const target of tier) {
      const key = targetKey(target);
      const current = (weights.get(key) ?? 0) + target.weight;
      weights.set(key, current);
      total += target.weight;
      if (current > bestWeight) {
        best = target;
        bestWeight = current;
      }
    }
    if (best === undefined) throw new RangeError("a tier has at least one target");
    weights.set(targetKey(best), bestWeight - total);
    return best;
  }

  /** Forgets all state (after a configuration reload changed the targets). */
  reset(): void {
    this.#current.clear();
  }
}
