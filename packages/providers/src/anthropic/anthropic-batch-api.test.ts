import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProviderBatchApi, ProviderBatchRequest, ProviderBatchResult } from "../batch/provider-batch.ts";
import { createAnthropicProvider } from "./anthropic-provider.ts";
import { type FakeAnthropicServer, startFakeAnthropicServer } from "./testing/fake-anthropic-server.ts";

const API_KEY = "sk-ant-test";

let server: FakeAnthropicServer;
let batches: ProviderBatchApi;

beforeAll(async () => {
  server = await startFakeAnthropicServer({ apiKey: API_KEY });
  const provider = createAnthropicProvider({ apiKey: API_KEY, baseURL: server.url });
  if (provider.batches === undefined) throw new Error("the Anthropic adapter offers no batch API");
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
      model: "claude-sonnet-4-5",
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

describe("Anthropic Message Batches", () => {
  it("sends each request as a Messages body under its custom_id", async () => {
    await batches.submit(requests(2));
    const create = server.requests.find((request) => request.path === "/v1/messages/batches");
    expect(create?.headers["anthropic-version"]).toBeDefined();
    expect((create?.body as { requests: unknown[] } | undefined)?.requests[1]).toEqual({
      custom_id: "item-1",
      params: {
        model: "claude-sonnet-4-5",
        max_tokens: 64,
        system: "Be brief.",
        messages: [{ role: "user", content: "question 1" }],
        stream: false,
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
        ? { type: "invalid_request_error", message: "messages: roles must alternate" }
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
    expect((await collect(id)).map((result) => result.kind)).toEqual([
      "succeeded",
      "unfinished",
      "unfinished",
    ]);
  });

  it("cancels a batch: requests that did not run come back canceled", async () => {
    const { id } = await batches.submit(requests(2));
    expect((await batches.cancel(id)).status).toBe("canceling");
    expect(await runToEnd(id)).toMatchObject({ outcome: "canceled" });
    expect(await collect(id)).toEqual([
      { customId: "item-0", kind: "unfinished", reason: "canceled" },
      { customId: "item-1", kind: "unfinished", reason: "canceled" },
    ]);
  });
});
