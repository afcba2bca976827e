import type { AddressInfo } from "node:net";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

/**
 * The economy tier end to end: `POST /v1/batches` with `tier: "economy"` (JSON and
 * JSONL), the worker's economy scheduler on a fake of OpenAI's Files and Batches
 * API, and the batch view and usage report showing the saving.
 */
let server: FakeOpenAIServer;
let harness: Harness;
let apiKey: string;

type Json = Record<string, unknown>;
interface BatchBody extends Json {
  id: string;
  status: string;
  tier: string;
  counts: { total: number; completed: number; failed: number; canceled: number };
  cost: { totalMicroUsd: number; onlineMicroUsd: number; savingsMicroUsd: number } | null;
}

beforeAll(async () => {
  server = await startFakeOpenAIServer({ apiKey: "sk-economy-e2e" });
  harness = await new Harness({
    // OpenAI-compatible batches run on the economy tier here (GENQ_OPENAI_BATCH_TIER=economy).
    openaiBatchTier: "economy",
    workerEnv: {
      OPENAI_API_KEY: "sk-economy-e2e",
      OPENAI_BASE_URL: server.url,
      GENQ_ECONOMY_INTERVAL_MS: "100",
      GENQ_ECONOMY_POLL_BASE_MS: "100",
      GENQ_ECONOMY_POLL_MAX_MS: "200",
    },
  }).start();
  ({ apiKey } = await harness.createUser(undefined, "enterprise"));
}, 60_000);

beforeEach(() => {
  server.reset();
  server.batches.setOutcome({ status: "completed" });
  server.batches.setPollsUntilEnd(1);
});

afterAll(async () => {
  await harness?.close();
  await server?.close();
});

function call(method: "GET" | "POST", url: string, payload?: unknown, headers: Json = {}) {
  return harness.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${apiKey}`, ...(headers as Record<string, string>) },
    ...(payload === undefined ? {} : { payload: payload as string }),
  });
}

async function waitForBatch(id: string, status = (batch: BatchBody) => batch.status !== "running") {
  let last: BatchBody | undefined;
  await waitUntil(async () => {
    last = (await call("GET", `/v1/batches/${id}`)).json();
    return last !== undefined && status(last);
  }, 30_000).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last)}`);
  });
  return last as BatchBody;
}

const items = (count: number) =>
  Array.from({ length: count }, (_, index) => ({ prompt: `economy question ${index}`, maxTokens: 32 }));

describe("economy batches", () => {
  it("runs an economy batch on the provider's batch API and shows what it saved", async () => {
    const accepted = await call("POST", "/v1/batches", {
      type: "text",
      tier: "economy",
      provider: "openai",
      items: items(20),
    });
    expect(accepted.statusCode).toBe(202);
    expect(accepted.json()).toMatchObject({ tier: "economy", counts: { total: 20 } });
    const batch = await waitForBatch(accepted.json().id);
    expect(batch).toMatchObject({ status: "completed", counts: { completed: 20, failed: 0 } });
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(0);
    expect(server.requests.filter((request) => request.path === "/v1/batches")).toHaveLength(1);

    const cost = batch.cost;
    expect(cost?.totalMicroUsd).toBeGreaterThan(0);
    expect(cost?.onlineMicroUsd).toBeGreaterThan(cost?.totalMicroUsd ?? 0);
    expect(cost?.savingsMicroUsd).toBe((cost?.onlineMicroUsd ?? 0) - (cost?.totalMicroUsd ?? 0));

    const results = (await call("GET", `/v1/batches/${batch.id}/results`)).json();
    expect(results.data[0].result).toMatchObject({ tier: "economy", provider: "openai" });

    const usage = (await call("GET", "/v1/usage")).json();
    expect(usage.totals.savingsMicroUsd).toBeGreaterThanOrEqual(cost?.savingsMicroUsd ?? 0);
    expect(usage.totals.onlineCostMicroUsd - usage.totals.costMicroUsd).toBe(usage.totals.savingsMicroUsd);
  });

  it("takes the tier from the query string of a JSONL body", async () => {
    const body = items(3)
      .map((item) => JSON.stringify(item))
      .join("\n");
    const accepted = await call("POST", "/v1/batches?type=text&provider=openai&tier=economy", body, {
      "content-type": "application/x-ndjson",
    });
    expect(accepted.statusCode).toBe(202);
    const batch = await waitForBatch(accepted.json().id);
    expect(batch).toMatchObject({ tier: "economy", status: "completed", counts: { completed: 3 } });
  });

  it("refuses an economy image batch and an unknown tier", async () => {
    const image = await call("POST", "/v1/batches", {
      type: "image",
      tier: "economy",
      items: [{ prompt: "a cat" }],
    });
    expect(image.statusCode).toBe(400);
    expect(image.json().error).toMatchObject({ code: "invalid_request" });
    expect(image.json().error.message).toContain("text batches only");
    const unknown = await call("POST", "/v1/batches", { type: "text", tier: "cheap", items: items(1) });
    expect(unknown.statusCode).toBe(400);
  });

  it("cancels the provider batch when the batch is canceled", async () => {
    server.batches.setPollsUntilEnd(1_000_000);
    const accepted = await call("POST", "/v1/batches", {
      type: "text",
      tier: "economy",
      provider: "openai",
      items: items(5),
    });
    const id = accepted.json().id as string;
    await waitUntil(() => server.requests.some((request) => request.path === "/v1/batches"), 30_000);
    const canceled = await call("POST", `/v1/batches/${id}/cancel`);
    expect(canceled.statusCode).toBe(200);
    const batch = await waitForBatch(id);
    expect(batch).toMatchObject({ status: "canceled", counts: { canceled: 5, completed: 0 } });
    expect(server.requests.some((request) => /^\/v1\/batches\/[^/]+\/cancel$/.test(request.path))).toBe(true);
  });

  it("runs an OpenAI-compatible batch on the economy tier when the operator says so", async () => {
    await harness.app.listen({ port: 0, host: "127.0.0.1" });
    const port = (harness.app.server.address() as AddressInfo).port;
    const client = new OpenAI({ apiKey, baseURL: `http://127.0.0.1:${port}/openai/v1`, maxRetries: 0 });
    const lines = ["a", "b", "c"].map((id) =>
      JSON.stringify({
        custom_id: id,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `say ${id}` }], max_tokens: 16 },
      }),
    );
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "economy.jsonl"),
      purpose: "batch",
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    let batch = created;
    await waitUntil(async () => {
      batch = await client.batches.retrieve(created.id);
      return batch.status === "completed";
    }, 30_000);
    expect(batch.request_counts).toMatchObject({ total: 3, completed: 3, failed: 0 });
    // Through the provider's batch API, not its online endpoint.
    expect(server.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(0);
    expect(server.requests.filter((request) => request.path === "/v1/batches")).toHaveLength(1);
    const output = await (await client.files.content(batch.output_file_id as string)).text();
    const ids = output
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { custom_id: string; response: { status_code: number } });
    expect(ids.map((line) => line.custom_id).sort()).toEqual(["a", "b", "c"]);
    expect(ids.every((line) => line.response.status_code === 200)).toBe(true);
  });
});
