import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  PROVIDER_BATCH_TAG,
  type ProviderBatchApi,
  type ProviderBatchRequest,
  type ProviderBatchResult,
} from "../batch/provider-batch.ts";
import { ProviderError } from "../provider-error.ts";
import { createOpenAIProvider } from "./openai-provider.ts";
import {
  type FakeOpenAIServer,
  openAIErrorBodies,
  startFakeOpenAIServer,
} from "./testing/fake-openai-server.ts";

const API_KEY = "sk-test-key";

let server: FakeOpenAIServer;
let batches: ProviderBatchApi;

beforeAll(async () => {
  server = await startFakeOpenAIServer({ apiKey: API_KEY });
  const provider = createOpenAIProvider({ apiKey: API_KEY, baseURL: server.url, batchApi: true });
  if (provider.batches === undefined) throw new Error("the OpenAI adapter offers no batch API");
  batches = provider.batches;
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
  server.batches.setOutcome({ status: "completed" });
  server.batches.setRequestOutcome(undefined);
  server.batches.setPollsUntilEnd(1);
});

function requests(count: number): ProviderBatchRequest[] {
  return Array.from({ length: count }, (_, index) => ({
    customId: `item-${index}`,
    request: {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: `question ${index}` }],
      maxTokens: 64,
    },
  }));
}

async function collect(id: string): Promise<ProviderBatchResult[]> {
  const results: ProviderBatchResult[] = [];
  for await (const result of batches.results(id)) results.push(result);
  return results;
}

async function runToEnd(id: string) {
  for (let poll = 0; poll < 10; poll++) {
    const state = await batches.retrieve(id);
    if (state.status === "ended") return state;
  }
  throw new Error("the batch never ended");
}

describe("OpenAI batch API", () => {
  it("uploads a JSONL file of chat requests and creates a 24h batch on it", async () => {
    const state = await batches.submit(requests(3), { metadata: { genq_batch: "b1" } });
    expect(state.status).toBe("running");
    const upload = server.requests.find((request) => request.path === "/v1/files");
    const fields = upload?.body as { purpose: string; file: { bytes: Uint8Array } };
    expect(fields.purpose).toBe("batch");
    const lines = Buffer.from(fields.file.bytes)
      .toString("utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines[0]).toEqual({
      custom_id: "item-0",
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "question 0" }], max_tokens: 64 },
    });
    const create = server.requests.find((request) => request.path === "/v1/batches");
    expect(create?.body).toMatchObject({
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { genq_batch: "b1" },
    });
  });

  it("reads every request's result with its usage once the batch completed", async () => {
    const { id } = await batches.submit(requests(5));
    expect((await batches.retrieve(id)).status).toBe("running");
    expect(await runToEnd(id)).toEqual({ id, status: "ended", outcome: "completed" });
    const results = await collect(id);
    expect(results).toHaveLength(5);
    const first = results.find((result) => result.customId === "item-0");
    expect(first?.kind).toBe("succeeded");
    if (first?.kind !== "succeeded") return;
    expect(first.result.text).toContain("question 0");
    expect(first.result.usage.inputTokens).toBeGreaterThan(0);
    expect(first.result.usage.outputTokens).toBeGreaterThan(0);
    expect(first.result.providerRequestId).toMatch(/^req_/);
  });

  it("maps failed requests into genq's taxonomy and keeps the others", async () => {
    server.batches.setRequestOutcome((customId) =>
      customId === "item-1" ? { status: 400, body: openAIErrorBodies.contextLengthExceeded } : undefined,
    );
    const { id } = await batches.submit(requests(3));
    await runToEnd(id);
    const results = await collect(id);
    const failed = results.find((result) => result.customId === "item-1");
    expect(failed).toMatchObject({
      kind: "errored",
      error: { code: "context_length_exceeded", retryable: false },
    });
    expect(results.filter((result) => result.kind === "succeeded")).toHaveLength(2);
  });

  it("reports the requests an expired batch never ran as unfinished", async () => {
    server.batches.setOutcome({ status: "expired", ran: 2 });
    const { id } = await batches.submit(requests(5));
    expect(await runToEnd(id)).toMatchObject({ outcome: "expired" });
    const results = await collect(id);
    expect(results.filter((result) => result.kind === "succeeded")).toHaveLength(2);
    expect(results.filter((result) => result.kind === "unfinished")).toEqual([
      { customId: "item-2", kind: "unfinished", reason: "expired" },
      { customId: "item-3", kind: "unfinished", reason: "expired" },
      { customId: "item-4", kind: "unfinished", reason: "expired" },
    ]);
  });

  it("cancels a running batch; its requests come back unfinished", async () => {
    const { id } = await batches.submit(requests(2));
    expect((await batches.cancel(id)).status).toBe("canceling");
    expect(await runToEnd(id)).toMatchObject({ outcome: "canceled" });
    expect((await collect(id)).map((result) => result.kind)).toEqual(["unfinished", "unfinished"]);
  });

  it("reports a batch the provider refused as failed, with its reason", async () => {
    server.batches.setOutcome({ status: "failed", message: "bad input file" });
    const { id } = await batches.submit(requests(1));
    expect(await runToEnd(id)).toEqual({ id, status: "ended", outcome: "failed", message: "bad input file" });
  });

  it("finds a submission by its tag past the first page, and a later page's failure is a provider error", async () => {
    const { id } = await batches.submit(requests(1), { metadata: { [PROVIDER_BATCH_TAG]: "tag-oldest" } });
    // More than one page (100) of newer batches.
    for (let index = 0; index < 100; index++) await batches.submit(requests(1));
    expect(await batches.findSubmitted?.("tag-oldest")).toMatchObject({ id });
    server.setHandler((request) =>
      request.method === "GET" && request.path === "/v1/batches" && request.query.after !== undefined
        ? { status: 500, body: openAIErrorBodies.serverError }
        : undefined,
    );
    await expect(batches.findSubmitted?.("tag-oldest")).rejects.toBeInstanceOf(ProviderError);
  });

  it("is absent unless enabled (OpenAI-compatible servers mostly have no batch API)", () => {
    expect(createOpenAIProvider({ apiKey: API_KEY, baseURL: server.url }).batches).toBeUndefined();
  });
});
