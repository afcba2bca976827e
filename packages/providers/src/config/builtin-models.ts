import { DEFAULT_PRICE_ENTRIES } from "../price-catalog.ts";
import type { Capability, ImageOptions } from "../router/types.ts";

/** A model known without a providers file, in the file's own shape. */
export interface BuiltinModel {
  id: string;
  capabilities: Capability[];
  image?: ImageOptions;
  price: {
    input: number;
    cachedInput?: number;
    output: number;
    perImage?: number;
    images?: Record<string, number>;
  };
}

/** Models that make images only, with what they accept; every other built-in model makes text. */
const IMAGE_MODELS: ReadonlyMap<string, ImageOptions> = new Map([
  [
    "gpt-image-1",
    {
      sizes: ["1024x1024", "1024x1536", "1536x1024", "auto"],
      qualities: ["low", "medium", "high", "auto"],
      maxImages: 10,
    },
  ],
  [
    "dall-e-3",
    { sizes: ["1024x1024", "1792x1024", "1024x1792"], qualities: ["standard", "hd"], maxImages: 1 },
  ],
  // Gemini takes aspect ratios; sizes are mapped to the nearest one, so any size is accepted.
  ["gemini-2.5-flash-image", { qualities: ["1k", "2k", "4k"], maxImages: 10 }],
]);

/** What the mock provider's images accept (its renderer takes 256–2048 pixels a side). */
export const MOCK_IMAGE_OPTIONS: ImageOptions = {
  sizes: ["256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "2048x2048"],
  maxImages: 10,
};

/**
 * The priced models of `provider` from {@link DEFAULT_PRICE_ENTRIES}, which stay
 * the one list of built-in prices. Used when no providers file is configured.
 */
export function builtinModels(provider: string): BuiltinModel[] {
  return DEFAULT_PRICE_ENTRIES.filter((entry) => entry.provider === provider && entry.model !== "*").map(
    (entry) => ({
      id: entry.model,
      capabilities: IMAGE_MODELS.has(entry.model) ? ["image"] : ["text"],
      ...(IMAGE_MODELS.has(entry.model) ? { image: { ...IMAGE_MODELS.get(entry.model) } } : {}),
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
