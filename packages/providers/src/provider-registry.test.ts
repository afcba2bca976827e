import { GenqError } from "@genq/core";
import { describe, expect, it } from "vitest";
import { createMockProvider } from "./mock/mock-provider.ts";
import { createProviderRegistry } from "./provider-registry.ts";

describe("createProviderRegistry", () => {
  const registry = createProviderRegistry(
    [createMockProvider(), createMockProvider({ name: "backup", defaultModel: "backup-1" })],
    { defaultProvider: "mock", defaultModels: { mock: "mock-large" } },
  );

  it("resolves the defaults when the job names nothing", () => {
    const { provider, model } = registry.resolve({});
    expect(provider.name).toBe("mock");
    expect(model).toBe("mock-large");
  });

  it("falls back to the provider's own default model", () => {
    expect(registry.resolve({ provider: "backup" }).model).toBe("backup-1");
    expect(registry.resolve({ provider: "backup", model: "chosen" }).model).toBe("chosen");
  });

  it("refuses an unconfigured provider with invalid_request naming the configured ones", () => {
    let caught: unknown;
    try {
      registry.get("openai");
    } catch (error) {
      caught = error;
    }
    expect(GenqError.is(caught)).toBe(true);
    expect(caught).toMatchObject({
      code: "invalid_request",
      retryable: false,
      message: "provider openai is not configured; configured: mock, backup",
    });
  });

  it("lists the names", () => {
    expect(registry.names()).toEqual(["mock", "backup"]);
  });

  it("refuses a default provider that is not configured", () => {
    expect(() => createProviderRegistry([], { defaultProvider: "mock", defaultModels: {} })).toThrow(
      /not configured/,
    );
  });
});
