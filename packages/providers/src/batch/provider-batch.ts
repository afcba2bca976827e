/** The batch API of a provider (the economy tier); declared with the provider interface it belongs to. */
export type {
  ProviderBatchApi,
  ProviderBatchRequest,
  ProviderBatchResult,
  ProviderBatchState,
} from "../provider.ts";
export { PROVIDER_BATCH_TAG } from "../provider.ts";
