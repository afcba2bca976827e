/**
 * The price of one model, in integer micro-USD per million tokens (or per image),
 * so money never goes through floating point: $0.15 per 1M tokens is `150_000`.
 */
export interface PriceEntry {
  /** The provider name as configured (`openai`, `deepseek`, ...). */
  provider: string;
  /** The model id, or `*` for every model of the provider without its own entry. */
  model: string;
  inputPerMillionMicroUsd: number;
  outputPerMillionMicroUsd: number;
  /** The price of input tokens served from the provider's prompt cache; default: the input price. */
  cachedInputPerMillionMicroUsd?: number;
  /** A flat price per generated image, for image models priced per image. */
  perImageMicroUsd?: number;
}

/** The usage a price applies to; every count defaults to 0. */
export interface PricedUsage {
  inputTokens?: number;
  outputTokens?: number;
  /** Part of `inputTokens` (OpenAI counts cached tokens inside the prompt tokens). */
  cachedInputTokens?: number;
  images?: number;
}

/** The cost of one call. */
export interface CostResult {
  /** Integer micro-USD, rounded up: a call is never recorded as cheaper than it was. */
  costMicroUsd: number;
  /** False when the catalog has no price for the model (the cost is then 0). */
  priced: boolean;
}

/** Looks up prices and turns usage into cost. */
export interface PriceCatalog {
  /** The entry used for `provider`/`model`: exact, then without a date suffix, then `*`. */
  find(provider: string, model: string): PriceEntry | undefined;
  costMicroUsd(input: { provider: string; model: string; usage: PricedUsage }): CostResult;
  /** Every entry, defaults included, in the order they were given. */
  entries(): PriceEntry[];
}

/** Options for {@link createPriceCatalog}. */
export interface PriceCatalogOptions {
  /** Start from {@link DEFAULT_PRICE_ENTRIES}. Default true. */
  includeDefaults?: boolean;
}

/**
 * Built-in prices (OpenAI list prices, standard tier), a starting point only:
 * prices change, so configuration is expected to override them. The mock costs 0.
 */
export const DEFAULT_PRICE_ENTRIES: readonly PriceEntry[] = [
  { provider: "mock", model: "*", inputPerMillionMicroUsd: 0, outputPerMillionMicroUsd: 0 },
  {
    provider: "openai",
    model: "gpt-4o-mini",
    inputPerMillionMicroUsd: 150_000,
    outputPerMillionMicroUsd: 600_000,
    cachedInputPerMillionMicroUsd: 75_000,
  },
  {
    provider: "openai",
    model: "gpt-4o",
    inputPerMillionMicroUsd: 2_500_000,
    outputPerMillionMicroUsd: 10_000_000,
    cachedInputPerMillionMicroUsd: 1_250_000,
  },
  {
    provider: "openai",
    model: "gpt-4.1-mini",
    inputPerMillionMicroUsd: 400_000,
    outputPerMillionMicroUsd: 1_600_000,
    cachedInputPerMillionMicroUsd: 100_000,
  },
];

const PRICE_FIELDS = [
  "inputPerMillionMicroUsd",
  "outputPerMillionMicroUsd",
  "cachedInputPerMillionMicroUsd",
  "perImageMicroUsd",
] as const;

/** Dated snapshots (`gpt-4o-mini-2024-07-18`) cost what their alias costs. */
const DATE_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

/**
 * A price catalog. `entries` are laid over the defaults; a later entry for the
 * same provider and model replaces an earlier one, so configuration wins.
 */
export function createPriceCatalog(
  entries: PriceEntry[] = [],
  options: PriceCatalogOptions = {},
): PriceCatalog {
  const all = [...((options.includeDefaults ?? true) ? DEFAULT_PRICE_ENTRIES : []), ...entries];
  const byKey = new Map<string, PriceEntry>();
  for (const entry of all) {
    for (const field of PRICE_FIELDS) {
      const value = entry[field];
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        throw new RangeError(
          `price for ${entry.provider}/${entry.model}: ${field} must be a non-negative number`,
        );
      }
    }
    byKey.set(key(entry.provider, entry.model), entry);
  }

  function find(provider: string, model: string): PriceEntry | undefined {
    return (
      byKey.get(key(provider, model)) ??
      byKey.get(key(provider, model.replace(DATE_SUFFIX, ""))) ??
      byKey.get(key(provider, "*"))
    );
  }

  return {
    find,
    entries: () => [...byKey.values()],
    costMicroUsd({ provider, model, usage }) {
      const entry = find(provider, model);
      if (entry === undefined) return { costMicroUsd: 0, priced: false };
      const inputTokens = usage.inputTokens ?? 0;
      const cachedTokens = Math.min(usage.cachedInputTokens ?? 0, inputTokens);
      // Sum in "micro-USD × million tokens" and divide once, so rounding happens once.
      const scaled =
        (inputTokens - cachedTokens) * entry.inputPerMillionMicroUsd +
        cachedTokens * (entry.cachedInputPerMillionMicroUsd ?? entry.inputPerMillionMicroUsd) +
        (usage.outputTokens ?? 0) * entry.outputPerMillionMicroUsd;
      const images = (usage.images ?? 0) * (entry.perImageMicroUsd ?? 0);
      return { costMicroUsd: divideRoundingUp(scaled, 1_000_000) + Math.ceil(images), priced: true };
    },
  };
}

function key(provider: string, model: string): string {
  return `${provider}\u0000${model}`;
}

/** Ceiling division that is exact for integers, where `Math.ceil(a / b)` can be off by float error. */
function divideRoundingUp(dividend: number, divisor: number): number {
  const quotient = Math.floor(dividend / divisor);
  return quotient * divisor < dividend ? quotient + 1 : quotient;
}
