import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  PROVIDER_BATCH_TAG,
  type ProviderBatchApi,
  type ProviderBatchRequest,
  type ProviderBatchResult,
} from "../batch/provider-batch.ts";
import { ProviderError } from "../provider-error.ts";
import { createGeminiProvider } from "./gemini-provider.ts";
import { type FakeGeminiServer, startFakeGeminiServer } from "./testing/fake-gemini-server.ts";

const API_KEY = "gemini-test-key";

let server: FakeGeminiServer;
let batches: ProviderBatchApi;

beforeAll(async () => {
  server = await startFakeGeminiServer({ apiKey: API_KEY });
  const provider = createGeminiProvider({ apiKey: API_KEY, baseURL: server.url });
  if (provider.batches === undefined) throw new Error("the Gemini adapter offers no batch API");
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
      model: "gemini-2.5-flash",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: `question ${index}` },
      ],
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

describe("Gemini batch mode", () => {
  it("sends inlined requests under metadata.key to batchGenerateContent", async () => {
    await batches.submit(requests(2), { metadata: { genq_provider_batch: "pb-1" } });
    const create = server.requests.find((request) => request.path.endsWith(":batchGenerateContent"));
    expect(create?.path).toBe("/v1beta/models/gemini-2.5-flash:batchGenerateContent");
    const batch = (create?.body as { batch: Record<string, unknown> } | undefined)?.batch;
    expect(batch?.displayName).toBe("pb-1");
    expect(batch?.inputConfig).toMatchObject({
      requests: {
        requests: [
          {
            metadata: { key: "item-0" },
            request: {
              contents: [{ role: "user", parts: [{ text: "question 0" }] }],
              systemInstruction: { parts: [{ text: "Be brief." }] },
              generationConfig: { maxOutputTokens: 64 },
            },
          },
          { metadata: { key: "item-1" } },
        ],
      },
    });
  });

  it("reads the results once the batch ended, with usage", async () => {
    const { id } = await batches.submit(requests(4));
    expect(await runToEnd(id)).toEqual({ id, status: "ended", outcome: "completed" });
    const results = await collect(id);
    expect(results).toHaveLength(4);
    const first = results[0];
    expect(first?.kind).toBe("succeeded");
    if (first?.kind !== "succeeded") return;
    expect(first.result.text).toContain("question 0");
    expect(first.result.usage.inputTokens).toBeGreaterThan(0);
    expect(first.result.finishReason).toBe("stop");
  });

  it("maps errored requests into genq's taxonomy", async () => {
    server.batches.setRequestOutcome((customId) =>
      customId === "item-2"
        ? { code: 400, message: "Invalid value at contents", status: "INVALID_ARGUMENT" }
        : undefined,
    );
    const { id } = await batches.submit(requests(3));
    await runToEnd(id);
    const failed = (await collect(id)).find((result) => result.customId === "item-2");
    expect(failed).toMatchObject({ kind: "errored", error: { code: "invalid_request", retryable: false } });
  });

  it("reports expired requests as unfinished", async () => {
    server.batches.setOutcome({ status: "expired", ran: 1 });
    const { id } = await batches.submit(requests(3));
    expect(await runToEnd(id)).toMatchObject({ outcome: "expired" });
    // Gemini returns no response for requests it never ran: the caller treats them as unfinished.
    expect((await collect(id)).map((result) => result.kind)).toEqual(["succeeded"]);
  });

  it("finds a submission by its display name past the first page, and a later page's failure is a provider error", async () => {
    const { id } = await batches.submit(requests(1), { metadata: { [PROVIDER_BATCH_TAG]: "tag-oldest" } });
    // More than one page (100) of newer batches.
    for (let index = 0; index < 100; index++) await batches.submit(requests(1));
    expect(await batches.findSubmitted?.("tag-oldest")).toMatchObject({ id });
    server.setHandler((request) =>
      request.method === "GET" && request.path === "/v1beta/batches" && request.query.pageToken !== undefined
        ? {
            status: 500,
            body: { error: { code: 500, message: "Internal error encountered.", status: "INTERNAL" } },
          }
        : undefined,
    );
    await expect(batches.findSubmitted?.("tag-oldest")).rejects.toBeInstanceOf(ProviderError);
  });

  it("cancels a batch: requests that did not run come back canceled", async () => {
    const { id } = await batches.submit(requests(2));
    expect((await batches.cancel(id)).status).toBe("canceling");
    expect(await runToEnd(id)).toMatchObject({ outcome: "canceled" });
    // Gemini returns no response for requests it never ran: the caller treats them as unfinished.
    expect(await collect(id)).toEqual([]);
  });
});
