export * from "./anthropic-provider.ts";
export * from "./map-anthropic-error.ts";
