import { DEFAULT_PRICE_ENTRIES } from "../price-catalog.ts";
import type { Capability } from "../router/types.ts";

/** A model known without a providers file, in the file's own shape. */
export interface BuiltinModel {
  id: string;
  capabilities: Capability[];
  price: {
    input: number;
    cachedInput?: number;
    output: number;
    perImage?: number;
    images?: Record<string, number>;
  };
}

/** Models that make images only; every other built-in model makes text. */
const IMAGE_MODELS = new Set(["gpt-image-1", "dall-e-3", "gemini-2.5-flash-image"]);

/**
 * The priced models of `provider` from {@link DEFAULT_PRICE_ENTRIES}, which stay
 * the one list of built-in prices. Used when no providers file is configured.
 */
export function builtinModels(provider: string): BuiltinModel[] {
  return DEFAULT_PRICE_ENTRIES.filter((entry) => entry.provider === provider && entry.model !== "*").map(
    (entry) => ({
      id: entry.model,
      capabilities: IMAGE_MODELS.has(entry.model) ? ["image"] : ["text"],
      price: {
        input: entry.inputPerMillionMicroUsd,
        output: entry.outputPerMillionMicroUsd,
        ...(entry.cachedInputPerMillionMicroUsd === undefined
          ? {}
          : { cachedInput: entry.cachedInputPerMillionMicroUsd }),
        ...(entry.perImageMicroUsd === undefined ? {} : { perImage: entry.perImageMicroUsd }),
        // A copy: the file built from these must not share (and so alter) the built-in table.
        ...(entry.imagePricesMicroUsd === undefined ? {} : { images: { ...entry.imagePricesMicroUsd } }),
      },
    }),
  );
}
