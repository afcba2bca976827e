/**
 * Test helpers for packages that run against providers: fake provider HTTP
 * servers that speak each wire protocol. Not for production code.
 */

export * from "../anthropic/testing/fake-anthropic-batches.ts";
export * from "../anthropic/testing/fake-anthropic-server.ts";
export * from "../gemini/testing/fake-gemini-batches.ts";
export * from "../gemini/testing/fake-gemini-server.ts";
export * from "../openai/testing/fake-openai-batches.ts";
export * from "../openai/testing/fake-openai-server.ts";
