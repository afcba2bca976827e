import {
  type FakeAnthropicServer,
  type FakeGeminiServer,
  startFakeAnthropicServer,
  startFakeGeminiServer,
} from "@genq/providers/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

describe("text jobs on the Anthropic and Gemini adapters (fake servers)", () => {
  let anthropic: FakeAnthropicServer;
  let gemini: FakeGeminiServer;
  let harness: Harness;
  let apiKey: string;

  beforeAll(async () => {
    anthropic = await startFakeAnthropicServer({ apiKey: "anthropic-test-key" });
    gemini = await startFakeGeminiServer({ apiKey: "gemini-test-key" });
    harness = await new Harness({
      workerEnv: {
        ANTHROPIC_API_KEY: "anthropic-test-key",
        ANTHROPIC_BASE_URL: anthropic.url,
        GEMINI_API_KEY: "gemini-test-key",
        GEMINI_BASE_URL: gemini.url,
      },
    }).start();
    ({ apiKey } = await harness.createUser());
  });
  afterAll(async () => {
    await harness.close();
    await anthropic.close();
    await gemini.close();
  });

  it("runs a job on Anthropic with its system prompt and records usage", async () => {
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        provider: "anthropic",
        model: "claude-haiku-4-5",
        input: { system: "Answer in one line.", prompt: "Name a queue", maxTokens: 40 },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", provider: "anthropic", attempts: 1 });
    expect((finished.result as { text: string }).text).toContain("Name a queue");
    expect((finished.usage as { inputTokens: number }).inputTokens).toBeGreaterThan(0);
    const call = anthropic.requests.find((request) => request.path === "/v1/messages");
    expect(call?.body).toMatchObject({
      model: "claude-haiku-4-5",
      system: "Answer in one line.",
      max_tokens: 40,
    });
  });

  it("runs a job on Gemini with its default model and records usage", async () => {
    const job = (
      await harness.submit(apiKey, { type: "text", provider: "gemini", input: { prompt: "Name a priority" } })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", provider: "gemini", attempts: 1 });
    expect((finished.result as { text: string }).text).toContain("Name a priority");
    expect(
      gemini.requests.some((request) => request.path === "/v1beta/models/gemini-2.5-flash:generateContent"),
    ).toBe(true);
  });

  it("fails an Anthropic job at once when the account is out of credit", async () => {
    anthropic.queueResponse({
      status: 400,
      body: {
        type: "error",
        error: {
          type: "invalid_request_error",
          message: "Your credit balance is too low to access the Anthropic API.",
        },
      },
    });
    const job = (
      await harness.submit(apiKey, { type: "text", provider: "anthropic", input: { prompt: "no credit" } })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 1, error: { code: "credit_exhausted" } });
  });
});
