import type { PriceEntry } from "../price-catalog.ts";

/** What {@link toPriceEntries} reads of a provider (a `ProviderSettings` fits). */
export interface PricedProvider {
  name: string;
  models: ReadonlyArray<{
    id: string;
    price?: {
      input: number;
      output: number;
      cachedInput?: number;
      perImage?: number;
      batchInput?: number;
      batchOutput?: number;
      images?: Readonly<Record<string, number>>;
    };
    zeroCost: boolean;
  }>;
}

/**
 * The price catalog entries of validated providers: one per model, from the
 * file's short field names; a zeroCost model gets an explicit 0 entry, so it is
 * priced (at nothing) rather than unknown. Image prices by size and quality are
 * copied with their keys sorted, so the entries (and the price hash made of them)
 * do not depend on the order the file lists them in.
 */
export function toPriceEntries(providers: readonly PricedProvider[]): PriceEntry[] {
  return providers.flatMap((provider) =>
    provider.models.map((model): PriceEntry => {
      if (model.zeroCost || model.price === undefined) {
        return {
          provider: provider.name,
          model: model.id,
          inputPerMillionMicroUsd: 0,
          outputPerMillionMicroUsd: 0,
        };
      }
      const { input, output, cachedInput, perImage, images, batchInput, batchOutput } = model.price;
      return {
        provider: provider.name,
        model: model.id,
        inputPerMillionMicroUsd: input,
        outputPerMillionMicroUsd: output,
        ...(cachedInput === undefined ? {} : { cachedInputPerMillionMicroUsd: cachedInput }),
        ...(perImage === undefined ? {} : { perImageMicroUsd: perImage }),
        ...(images === undefined ? {} : { imagePricesMicroUsd: sortedByKey(images) }),
        ...(batchInput === undefined ? {} : { batchInputPerMillionMicroUsd: batchInput }),
        ...(batchOutput === undefined ? {} : { batchOutputPerMillionMicroUsd: batchOutput }),
      };
    }),
  );
}

function sortedByKey(prices: Readonly<Record<string, number>>): Record<string, number> {
  // Code-unit order, unlike `localeCompare`, is the same on every machine.
  return Object.fromEntries(
    Object.entries(prices).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)),
  );
}
