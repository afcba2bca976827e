export * from "./map-openai-error.ts";
export * from "./openai-provider.ts";
