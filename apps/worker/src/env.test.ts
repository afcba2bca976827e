import { describe, expect, it } from "vitest";
import { loadWorkerEnv } from "./env.ts";

describe("loadWorkerEnv", () => {
  it("runs the text queue on the mock provider by default", () => {
    const env = loadWorkerEnv({});
    expect(env.GENQ_WORKER_QUEUES).toEqual(["text", "image", "webhook"]);
    expect(env.GENQ_DEFAULT_PROVIDER).toBe("mock");
    expect(env.GENQ_SHUTDOWN_TIMEOUT_MS).toBe(30_000);
  });

  it("parses a comma-separated queue list and refuses unknown queues", () => {
    expect(loadWorkerEnv({ GENQ_WORKER_QUEUES: "text, image" }).GENQ_WORKER_QUEUES).toEqual([
      "text",
      "image",
    ]);
    expect(() => loadWorkerEnv({ GENQ_WORKER_QUEUES: "text,video" })).toThrow(/GENQ_WORKER_QUEUES/);
  });

  it("requires an OpenAI key when OpenAI is the default provider", () => {
    expect(() => loadWorkerEnv({ GENQ_DEFAULT_PROVIDER: "openai" })).toThrow(/OPENAI_API_KEY: is required/);
  });

  it("accepts users' own keys on no provider unless GENQ_BYO_PROVIDERS names it, and never on the mock", () => {
    expect(loadWorkerEnv({}).GENQ_BYO_PROVIDERS).toEqual([]);
    expect(loadWorkerEnv({ GENQ_BYO_PROVIDERS: "openai, gemini" }).GENQ_BYO_PROVIDERS).toEqual([
      "openai",
      "gemini",
    ]);
    expect(() => loadWorkerEnv({ GENQ_BYO_PROVIDERS: "mock" })).toThrow(/GENQ_BYO_PROVIDERS/);
  });

  it("names a non-numeric concurrency", () => {
    expect(() => loadWorkerEnv({ GENQ_TEXT_CONCURRENCY: "lots" })).toThrow(/GENQ_TEXT_CONCURRENCY/);
  });

  it("requires the key of whichever provider is the default", () => {
    expect(() => loadWorkerEnv({ GENQ_DEFAULT_PROVIDER: "gemini" })).toThrow(/GEMINI_API_KEY: is required/);
    expect(() => loadWorkerEnv({ GENQ_DEFAULT_PROVIDER: "anthropic" })).toThrow(
      /ANTHROPIC_API_KEY: is required/,
    );
  });

  it("leaves the provider choice to the providers file when one is given", () => {
    const env = loadWorkerEnv({ GENQ_PROVIDERS_FILE: "/etc/genq/providers.yaml", NODE_ENV: "production" });
    expect(env.GENQ_PROVIDERS_FILE).toBe("/etc/genq/providers.yaml");
    expect(env.GENQ_PROVIDERS_WATCH).toBe(false);
  });

  it("parses the webhook settings and names a bad schedule or allowlist", () => {
    const env = loadWorkerEnv({
      GENQ_WORKER_QUEUES: "webhook",
      GENQ_WEBHOOK_RETRY_SCHEDULE_MS: "0,200,200",
      GENQ_WEBHOOK_ALLOWED_HOSTS: "localhost,127.0.0.1,10.0.0.0/8",
    });
    expect(env.GENQ_WORKER_QUEUES).toEqual(["webhook"]);
    expect(env.GENQ_WEBHOOK_RETRY_SCHEDULE_MS).toEqual([0, 200, 200]);
    expect(env.GENQ_WEBHOOK_ALLOWED_HOSTS?.hostnames.has("localhost")).toBe(true);
    expect(env.GENQ_WEBHOOK_TIMEOUT_MS).toBe(15_000);
    expect(() => loadWorkerEnv({ GENQ_WEBHOOK_RETRY_SCHEDULE_MS: "0,soon" })).toThrow(
      /GENQ_WEBHOOK_RETRY_SCHEDULE_MS/,
    );
    expect(() => loadWorkerEnv({ GENQ_WEBHOOK_ALLOWED_HOSTS: "10.0.0.0/64" })).toThrow(
      /GENQ_WEBHOOK_ALLOWED_HOSTS/,
    );
  });
});
