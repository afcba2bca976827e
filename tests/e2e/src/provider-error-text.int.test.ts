import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buildApp } from "@genq/api";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;
const INTERNAL_HOST = "http://10.1.2.3:8443";
const KEYISH = "sk-live-9f8e7d6c5b4a39281706ABCDEF";
/** What a provider (or a proxy in front of it) may answer: internal addresses and a key. */
const LEAKY = `upstream connect error to ${INTERNAL_HOST}/v1/chat/completions (auth ${KEYISH})`;

/** True when `text` carries any part of the provider's internal detail. */
function leaks(text: string): boolean {
  return (
    text.includes("10.1.2.3") || text.includes("8443") || text.includes(KEYISH) || text.includes("upstream")
  );
}

/**
 * A provider's error text can name internal hosts and keys. Users get the code and a
 * generic message (with the provider's request id) in every view: the job, its calls,
 * the live events and the webhook; operators read the text in the admin call log.
 */
describe("provider error text", () => {
  let provider: FakeOpenAIServer;
  let harness: Harness;
  let sse: FastifyInstance;
  let sseBase: string;
  let receiver: Server;
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  let apiKey: string;

  beforeAll(async () => {
    provider = await startFakeOpenAIServer({ apiKey: "sk-test-fake-key" });
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
        response.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-test-fake-key",
        OPENAI_BASE_URL: provider.url,
        OPENAI_DEFAULT_MODEL: "gpt-4o-mini",
        GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
      },
    }).start();
    sse = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      docs: false,
    });
    sseBase = await sse.listen({ port: 0, host: "127.0.0.1" });
    ({ apiKey } = await harness.createUser());
  });

  afterAll(async () => {
    await sse?.close();
    await harness?.close();
    await provider?.close();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  it("shows users the code and a generic message, never the provider's text; operators see the text", async () => {
    // Attempt 1: two 500s (the router retries once), so the job retries; attempt 2: a 400, which fails it.
    const serverError = {
      status: 500,
      body: { error: { message: LEAKY, type: "server_error", code: null } },
    };
    // The first answer is held back, so the live stream below is open (watched) while the job runs.
    provider.queueResponse({ ...serverError, delayMs: 1_500 }, serverError, {
      status: 400,
      body: { error: { message: LEAKY, type: "invalid_request_error", param: null, code: null } },
    });
    const { port } = receiver.address() as AddressInfo;
    const submitted = await harness.submit(apiKey, {
      type: "text",
      provider: "openai",
      input: { prompt: "fails with a leaky error" },
      webhook: { url: `http://127.0.0.1:${port}/hook` },
    });
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json().id as string;
    // Live events are published only while someone listens: listen from the first call on.
    await waitUntil(() => provider.requests.length > 0, 10_000);
    const stream = await fetch(`${sseBase}/v1/jobs/${id}/events`, {
      headers: { authorization: `Bearer ${apiKey}`, accept: "text/event-stream" },
    });
    const job = await harness.waitForJob(apiKey, id);

    // The job view, with its calls.
    expect(job).toMatchObject({ status: "failed", attempts: 2, error: { code: "invalid_request" } });
    const error = job.error as { message: string };
    expect(error.message).toMatch(/^The request was rejected as invalid/);
    expect(error.message).toMatch(/Provider request id: req_[0-9a-f]+\./);
    const calls = job.calls as Array<{ outcome: string; errorCode?: string; errorMessage?: string }>;
    expect(calls.filter((call) => call.outcome === "error")).toHaveLength(3);
    expect(calls.map((call) => call.errorMessage)).toContain(
      "The provider was unavailable; try again later.",
    );
    expect(leaks(JSON.stringify(job))).toBe(false);
    const listed = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs?status=failed",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(listed.json().data.map((entry: { id: string }) => entry.id)).toContain(id);
    expect(leaks(listed.body)).toBe(false);

    // The live events: job.retrying after attempt 1, job.failed at the end.
    const events = await stream.text();
    expect(events).toContain("event: job.retrying");
    expect(events).toContain("event: job.failed");
    expect(events).toContain('"code":"provider_unavailable"');
    expect(leaks(events)).toBe(false);

    // The webhook.
    await waitUntil(() => received.length > 0, 15_000);
    const [delivery] = received;
    expect(JSON.parse(delivery!.body)).toMatchObject({
      type: "job.failed",
      data: { id, error: { code: "invalid_request" } },
    });
    expect(leaks(delivery!.body)).toBe(false);

    // The operator's call log keeps what the provider said.
    const log = await harness.app.inject({
      method: "GET",
      url: `/v1/admin/jobs/${id}/calls`,
      headers: { authorization: OPERATOR },
    });
    expect(log.statusCode).toBe(200);
    const operatorCalls = log.json().calls as Array<{ errorMessage?: string }>;
    expect(operatorCalls.filter((call) => call.errorMessage?.includes(INTERNAL_HOST))).toHaveLength(3);
  });
});
