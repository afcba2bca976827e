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
  /**
   * A flat price per generated image, for image models priced per image; with
   * {@link imagePricesMicroUsd}, the price of any image the table does not cover.
   */
  perImageMicroUsd?: number;
  /**
   * Prices per generated image by size and quality, keyed `"<size>/<quality>"`
   * (`"1024x1024/high"`), `"<size>"` (any quality), `"*\/<quality>"` (any size)
   * or `"*"`; sizes are `<width>x<height>`, qualities lowercase letters. See
   * {@link PriceCatalog.imagePrice} for which key wins.
   */
  imagePricesMicroUsd?: Readonly<Record<string, number>>;
  /**
   * The version of this one price, when it has its own (a price stored in the
   * database: the id of its price row); costs made with it record this instead of
   * the catalog's {@link PriceCatalog.version}.
   */
  version?: string;
  /**
   * The input price on the provider's batch API (the economy tier); default half the
   * input price, the discount OpenAI, Anthropic and Gemini all give on batches.
   */
  batchInputPerMillionMicroUsd?: number;
  /** The output price on the provider's batch API; default half the output price. */
  batchOutputPerMillionMicroUsd?: number;
}

/** Which price list a call is charged at: online (the default) or the provider's batch API. */
export type PriceTier = "online" | "batch";

/** The usage a price applies to; every count defaults to 0. */
export interface PricedUsage {
  inputTokens?: number;
  outputTokens?: number;
  /** Part of `inputTokens` (OpenAI counts cached tokens inside the prompt tokens). */
  cachedInputTokens?: number;
  images?: number;
}

/** The image request a per-image price depends on, as sent to the provider. */
export interface PricedImage {
  /** `<width>x<height>`, e.g. `1024x1536`. */
  size?: string;
  /** e.g. `low`, `medium`, `high`, `standard`, `hd`. */
  quality?: string;
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
  /**
   * The cost of `usage`; `image` is the size and quality the images were asked
   * for, and picks their price as {@link PriceCatalog.imagePrice} does (0 per
   * image when it finds none).
   */
  costMicroUsd(input: {
    provider: string;
    model: string;
    usage: PricedUsage;
    image?: PricedImage;
    /** `batch`: the provider's batch prices ({@link PriceEntry.batchInputPerMillionMicroUsd}). Default `online`. */
    tier?: PriceTier;
  }): CostResult;
  /**
   * The price of one image of `model` in micro-USD, undefined when there is none.
   * Lookup order, first match wins: `"<size>/<quality>"`, `"<size>"`,
   * `"*\/<quality>"`, `"*"` in the entry's {@link PriceEntry.imagePricesMicroUsd}
   * (keys needing a size or quality the request leaves out are skipped), then
   * {@link PriceEntry.perImageMicroUsd}. Size and quality are matched trimmed and
   * lowercased. Undefined also when the catalog has no entry for the model, and
   * for entries that price no image at all (free models, models priced by tokens);
   * whether those are priced is for {@link PriceCatalog.find} and the model's
   * `zeroCost` to tell.
   */
  imagePrice(provider: string, model: string, image?: PricedImage): number | undefined;
  /** Every entry, defaults included, in the order they were given. */
  entries(): PriceEntry[];
  /**
   * Which prices these are, recorded with every cost so a cost can be traced to
   * the prices that made it: a providers file's `priceVersion`, or `builtin`.
   */
  readonly version: string;
}

/** Options for {@link createPriceCatalog}. */
export interface PriceCatalogOptions {
  /** Start from {@link DEFAULT_PRICE_ENTRIES}. Default true. */
  includeDefaults?: boolean;
  /** The catalog's {@link PriceCatalog.version}. Default `builtin`. */
  version?: string;
}

/**
 * Built-in list prices (standard tier) of common OpenAI, Anthropic and Gemini
 * models, a starting point only: prices change, so a providers file is expected
 * to state its own. Image models priced per image have token prices of 0. The
 * mock costs 0.
 */
export const DEFAULT_PRICE_ENTRIES: readonly PriceEntry[] = [
  { provider: "mock", model: "*", inputPerMillionMicroUsd: 0, outputPerMillionMicroUsd: 0 },
  tokenPrice("openai", "gpt-4o-mini", 150_000, 75_000, 600_000),
  tokenPrice("openai", "gpt-4o", 2_500_000, 1_250_000, 10_000_000),
  tokenPrice("openai", "gpt-4.1-mini", 400_000, 100_000, 1_600_000),
  // gpt-image-1 bills by size and quality; 42_000 (medium, square) covers anything else, "auto" included.
  imagePrice("openai", "gpt-image-1", 42_000, {
    "1024x1024/low": 11_000,
    "1024x1536/low": 16_000,
    "1536x1024/low": 16_000,
    "1024x1024/medium": 42_000,
    "1024x1536/medium": 63_000,
    "1536x1024/medium": 63_000,
    "1024x1024/high": 167_000,
    "1024x1536/high": 250_000,
    "1536x1024/high": 250_000,
  }),
  // dall-e-3 defaults to standard quality, so a size alone costs the standard price.
  imagePrice("openai", "dall-e-3", 40_000, {
    "1024x1024": 40_000,
    "1024x1792": 80_000,
    "1792x1024": 80_000,
    "1024x1024/standard": 40_000,
    "1024x1792/standard": 80_000,
    "1792x1024/standard": 80_000,
    "1024x1024/hd": 80_000,
    "1024x1792/hd": 120_000,
    "1792x1024/hd": 120_000,
  }),
  tokenPrice("anthropic", "claude-sonnet-4-5", 3_000_000, 300_000, 15_000_000),
  tokenPrice("anthropic", "claude-haiku-4-5", 1_000_000, 100_000, 5_000_000),
  tokenPrice("anthropic", "claude-opus-4-1", 15_000_000, 1_500_000, 75_000_000),
  tokenPrice("gemini", "gemini-2.5-flash", 300_000, 75_000, 2_500_000),
  tokenPrice("gemini", "gemini-2.5-pro", 1_250_000, 312_500, 10_000_000),
  imagePrice("gemini", "gemini-2.5-flash-image", 39_000),
];

function tokenPrice(
  provider: string,
  model: string,
  inputPerMillionMicroUsd: number,
  cachedInputPerMillionMicroUsd: number,
  outputPerMillionMicroUsd: number,
): PriceEntry {
  return {
    provider,
    model,
    inputPerMillionMicroUsd,
    outputPerMillionMicroUsd,
    cachedInputPerMillionMicroUsd,
  };
}

function imagePrice(
  provider: string,
  model: string,
  perImageMicroUsd: number,
  imagePricesMicroUsd?: Record<string, number>,
): PriceEntry {
  return {
    provider,
    model,
    inputPerMillionMicroUsd: 0,
    outputPerMillionMicroUsd: 0,
    perImageMicroUsd,
    ...(imagePricesMicroUsd === undefined ? {} : { imagePricesMicroUsd }),
  };
}

/**
 * A key of {@link PriceEntry.imagePricesMicroUsd}: `<width>x<height>` or `*`,
 * optionally followed by `/<quality>` in lowercase letters.
 */
export const IMAGE_PRICE_KEY: RegExp = /^(?:[1-9]\d*x[1-9]\d*|\*)(?:\/[a-z]+)?$/;

const PRICE_FIELDS = [
  "inputPerMillionMicroUsd",
  "outputPerMillionMicroUsd",
  "cachedInputPerMillionMicroUsd",
  "perImageMicroUsd",
  "batchInputPerMillionMicroUsd",
  "batchOutputPerMillionMicroUsd",
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
    for (const [imageKey, value] of Object.entries(entry.imagePricesMicroUsd ?? {})) {
      if (!IMAGE_PRICE_KEY.test(imageKey)) {
        throw new RangeError(
          `price for ${entry.provider}/${entry.model}: imagePricesMicroUsd key ${JSON.stringify(imageKey)} must be "<width>x<height>" or "*", optionally followed by "/<quality>"`,
        );
      }
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new RangeError(
          `price for ${entry.provider}/${entry.model}: imagePricesMicroUsd[${JSON.stringify(imageKey)}] must be a non-negative number`,
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
    version: options.version ?? "builtin",
    entries: () => [...byKey.values()],
    imagePrice(provider, model, image = {}) {
      const entry = find(provider, model);
      return entry === undefined ? undefined : imagePriceOf(entry, image);
    },
    costMicroUsd({ provider, model, usage, image = {}, tier = "online" }) {
      const entry = find(provider, model);
      if (entry === undefined) return { costMicroUsd: 0, priced: false };
      const inputTokens = usage.inputTokens ?? 0;
      const cachedTokens = Math.min(usage.cachedInputTokens ?? 0, inputTokens);
      const prices = tier === "batch" ? doubledBatchPrices(entry) : doubledOnlinePrices(entry);
      // Sum in "micro-USD × million tokens × 2" (half prices stay integers) and divide
      // once, so rounding happens once.
      const scaled =
        (inputTokens - cachedTokens) * prices.input +
        cachedTokens * prices.cachedInput +
        (usage.outputTokens ?? 0) * prices.output;
      const images = (usage.images ?? 0) * (imagePriceOf(entry, image) ?? 0);
      return { costMicroUsd: divideRoundingUp(scaled, 2_000_000) + Math.ceil(images), priced: true };
    },
  };
}

/** An entry's online token prices, doubled (see {@link doubledBatchPrices}). */
function doubledOnlinePrices(entry: PriceEntry) {
  return {
    input: entry.inputPerMillionMicroUsd * 2,
    cachedInput: (entry.cachedInputPerMillionMicroUsd ?? entry.inputPerMillionMicroUsd) * 2,
    output: entry.outputPerMillionMicroUsd * 2,
  };
}

/**
 * An entry's batch token prices, doubled so that the default (half the online
 * price) stays an integer: stated batch prices, else the online ones undoubled.
 * Cached input costs half its online price too, or the stated batch input price
 * when that is lower.
 */
function doubledBatchPrices(entry: PriceEntry) {
  const cachedOnline = entry.cachedInputPerMillionMicroUsd ?? entry.inputPerMillionMicroUsd;
  const input =
    entry.batchInputPerMillionMicroUsd === undefined
      ? entry.inputPerMillionMicroUsd
      : entry.batchInputPerMillionMicroUsd * 2;
  return {
    input,
    cachedInput: Math.min(cachedOnline, input),
    output:
      entry.batchOutputPerMillionMicroUsd === undefined
        ? entry.outputPerMillionMicroUsd
        : entry.batchOutputPerMillionMicroUsd * 2,
  };
}

/** The lookup order documented on {@link PriceCatalog.imagePrice}. */
function imagePriceOf(entry: PriceEntry, image: PricedImage): number | undefined {
  const table = entry.imagePricesMicroUsd;
  if (table !== undefined) {
    const size = normalizeImageOption(image.size);
    const quality = normalizeImageOption(image.quality);
    const candidates = [
      size !== undefined && quality !== undefined ? `${size}/${quality}` : undefined,
      size,
      quality === undefined ? undefined : `*/${quality}`,
      "*",
    ];
    for (const candidate of candidates) {
      // Own keys only: a size such as "constructor" must not find Object.prototype's.
      if (candidate !== undefined && Object.hasOwn(table, candidate)) return table[candidate];
    }
  }
  return entry.perImageMicroUsd;
}

function normalizeImageOption(value: string | undefined): string | undefined {
  const normalized = value?.trim().toLowerCase();
  return normalized === "" ? undefined : normalized;
}

function key(provider: string, model: string): string {
  return `${provider}\u0000${model}`;
}

/** Ceiling division that is exact for integers, where `Math.ceil(a / b)` can be off by float error. */
function divideRoundingUp(dividend: number, divisor: number): number {
  const quotient = Math.floor(dividend / divisor);
  return quotient * divisor < dividend ? quotient + 1 : quotient;
}
