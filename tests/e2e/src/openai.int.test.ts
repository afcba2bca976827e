import { type FakeOpenAIServer, openAIErrorBodies, startFakeOpenAIServer } from "@genq/providers/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

describe("text jobs on the OpenAI adapter (fake chat-completions server)", () => {
  let server: FakeOpenAIServer;
  let harness: Harness;
  let apiKey: string;

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ apiKey: "sk-test-fake-key" });
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-test-fake-key",
        OPENAI_BASE_URL: server.url,
        OPENAI_DEFAULT_MODEL: "gpt-4o-mini",
      },
    }).start();
    ({ apiKey } = await harness.createUser());
  });
  beforeEach(() => server.reset());
  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  it("runs a job through the OpenAI SDK and records result, usage and cost", async () => {
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        provider: "openai",
        input: { system: "Be brief.", prompt: "What is genq?", maxTokens: 50, temperature: 0.2 },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);

    expect(finished).toMatchObject({
      status: "completed",
      provider: "openai",
      model: "gpt-4o-mini",
      attempts: 1,
    });
    expect((finished.result as { text: string }).text).toContain("What is genq?");
    expect((finished.result as { providerRequestId?: string }).providerRequestId).toBeTruthy();
    const usage = finished.usage as { inputTokens: number; outputTokens: number };
    expect(usage.inputTokens).toBeGreaterThan(0);
    // gpt-4o-mini is priced in the default catalog, so real usage costs more than nothing.
    expect(finished.costMicroUsd as number).toBeGreaterThan(0);

    const calls = server.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers.authorization).toBe("Bearer sk-test-fake-key");
    expect(calls[0]?.body).toMatchObject({
      model: "gpt-4o-mini",
      max_tokens: 50,
      temperature: 0.2,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is genq?" },
      ],
    });
  });

  it("fails at once, without retrying, when the account is out of credit", async () => {
    server.queueResponse({ status: 429, body: openAIErrorBodies.insufficientQuota });
    const job = (
      await harness.submit(apiKey, { type: "text", provider: "openai", input: { prompt: "no credit" } })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 1, error: { code: "credit_exhausted" } });
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(1);

    // The key stays out of rotation: the next job fails without calling the provider...
    const next = (
      await harness.submit(apiKey, { type: "text", provider: "openai", input: { prompt: "still no credit" } })
    ).json();
    expect(await harness.waitForJob(apiKey, next.id)).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "credit_exhausted" },
      calls: [expect.objectContaining({ outcome: "skipped", errorCode: "rate_limited" })],
    });
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(1);
    // ...until an operator puts it back.
    const reset = await harness.app.inject({
      method: "POST",
      url: "/v1/admin/providers/openai/keys/default/reset",
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`,
      },
    });
    expect(reset.statusCode).toBe(204);
  });

  it("retries a 500 from the provider within the attempt and completes", async () => {
    server.queueResponse({ status: 500, body: openAIErrorBodies.serverError });
    const job = (
      await harness.submit(apiKey, { type: "text", provider: "openai", input: { prompt: "flaky upstream" } })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", attempts: 1, error: null });
    expect(
      (finished.calls as Array<{ outcome: string; errorCode?: string }>).map(
        (call) => call.errorCode ?? call.outcome,
      ),
    ).toEqual(["provider_unavailable", "ok"]);
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(2);
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
  });
});
