/**
 * Test helpers for packages that run against providers: fake provider HTTP
 * servers that speak each wire protocol. Not for production code.
 */
export * from "../openai/testing/fake-openai-server.ts";
