export { allowedProviderOptions, DEFAULT_MAX_OUTPUT_TOKENS } from "./allowed-provider-options.ts";
export * from "./anthropic/index.ts";
export type {
  ProviderBatchApi,
  ProviderBatchRequest,
  ProviderBatchResult,
  ProviderBatchState,
} from "./batch/provider-batch.ts";
export * from "./config/index.ts";
export * from "./detect-image-media-type.ts";
export * from "./estimate-tokens.ts";
export * from "./gemini/index.ts";
export * from "./image-dimensions.ts";
export * from "./mock/failure-counter.ts";
export * from "./mock/mock-provider.ts";
export * from "./mock/render-png.ts";
export * from "./openai/index.ts";
export * from "./parse-retry-after.ts";
export * from "./price-catalog.ts";
export * from "./provider.ts";
export * from "./provider-error.ts";
export * from "./result-cache.ts";
export * from "./router/job-plan.ts";
export * from "./router/resolve-targets.ts";
export * from "./router/router.ts";
export * from "./router/router-catalog.ts";
export * from "./router/state/redis-router-state.ts";
export * from "./router/strategies.ts";
export * from "./router/types.ts";
