export * from "./gemini-provider.ts";
export { mapGeminiError } from "./map-gemini-error.ts";
