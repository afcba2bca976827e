import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

/**
 * Batches end to end: the real API (`POST /v1/batches`, JSON and JSONL), the
 * fair dispatcher and an in-process worker on the mock provider.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await new Harness({
    // A generous cap: this file tests batches, not fairness (see fairness.int.test.ts).
    workerEnv: { GENQ_BATCH_TENANT_CAP: "200", GENQ_BATCH_DISPATCH_INTERVAL_MS: "50" },
  }).start();
}, 60_000);

afterAll(async () => {
  await harness?.close();
});

type Json = Record<string, unknown>;
interface BatchBody extends Json {
  id: string;
  status: string;
  counts: {
    total: number;
    queued: number;
    active: number;
    completed: number;
    failed: number;
    canceled: number;
  };
  progress: number;
  invalidItems: Array<{ index: number; message: string }>;
  invalidCount?: number;
  startedAt: string | null;
  finishedAt: string | null;
  etaSeconds: number | null;
}

function request(apiKey: string, method: "GET" | "POST", url: string, payload?: unknown, headers = {}) {
  return harness.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${apiKey}`, ...headers },
    ...(payload === undefined ? {} : { payload: payload as string }),
  });
}

async function getBatch(apiKey: string, id: string): Promise<BatchBody> {
  const response = await request(apiKey, "GET", `/v1/batches/${id}`);
  expect(response.statusCode).toBe(200);
  return response.json();
}

/** Generous: a 1,000-item batch takes 15–45 s here depending on the machine's load. */
async function waitForBatch(apiKey: string, id: string, timeoutMs = 100_000): Promise<BatchBody> {
  let last: BatchBody | undefined;
  await waitUntil(async () => {
    last = await getBatch(apiKey, id);
    return last.status !== "running";
  }, timeoutMs).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last?.counts)}`);
  });
  return last!;
}

describe("batches", () => {
  it("runs a 1,000-item text batch: every item completes, counts are exact, results come in item order", async () => {
    const { apiKey } = await harness.createUser();
    const failing = new Set([17, 503]);
    const items = Array.from({ length: 1_000 }, (_, index) =>
      failing.has(index)
        ? { prompt: `item ${index}`, providerOptions: { mock: { fail: "invalid_request" } } }
        : { prompt: `item ${index}` },
    );
    const accepted = await request(apiKey, "POST", "/v1/batches", {
      type: "text",
      items,
      metadata: { run: 1 },
    });
    expect(accepted.statusCode).toBe(202);
    const batch: BatchBody = accepted.json();
    expect(batch).toMatchObject({ object: "batch", status: "running", priority: "low", invalidCount: 0 });
    expect(batch.counts.total).toBe(1_000);

    const done = await waitForBatch(apiKey, batch.id);
    expect(done.status).toBe("completed");
    expect(done.counts).toEqual({
      total: 1_000,
      queued: 0,
      active: 0,
      completed: 998,
      failed: 2,
      canceled: 0,
    });
    expect(done.progress).toBe(100);
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();

    // Paginated results, in item order.
    const seen: Json[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "limit=300" : `limit=300&cursor=${cursor}`;
      const page = await request(apiKey, "GET", `/v1/batches/${batch.id}/results?${query}`);
      expect(page.statusCode).toBe(200);
      const body = page.json() as { data: Json[]; nextCursor: string | null };
      seen.push(...body.data);
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(seen.map((item) => item.itemIndex)).toEqual(items.map((_, index) => index));
    expect(seen[42]).toMatchObject({ status: "completed", error: null, usage: expect.any(Object) });
    expect((seen[42]?.result as { text: string } | undefined)?.text).toContain('"item 42"');

    // The failed items, listed.
    const failed = await request(apiKey, "GET", `/v1/batches/${batch.id}/results?status=failed`);
    expect((failed.json() as { data: Json[] }).data.map((item) => item.itemIndex)).toEqual([17, 503]);

    // The JSONL download: the same rows, one per line, in item order.
    const download = await request(apiKey, "GET", `/v1/batches/${batch.id}/results.jsonl`);
    expect(download.statusCode).toBe(200);
    expect(download.headers["content-type"]).toContain("application/x-ndjson");
    const lines = download.body
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Json);
    expect(lines.map((line) => line.itemIndex)).toEqual(seen.map((item) => item.itemIndex));
    expect(lines.map((line) => line.jobId)).toEqual(seen.map((item) => item.jobId));

    // Items are jobs too, linked to their batch.
    const job = await harness.getJob(apiKey, seen[5]?.jobId as string);
    expect(job).toMatchObject({ batchId: batch.id, itemIndex: 5, status: "completed", priority: "low" });
  }, 120_000);

  it("reports invalid items by index and runs the valid ones (JSON and JSONL bodies)", async () => {
    const { apiKey } = await harness.createUser();
    const accepted = await request(apiKey, "POST", "/v1/batches", {
      type: "text",
      items: [
        { prompt: "a" },
        { prompt: "" },
        { prompt: "c" },
        "not an object",
        { prompt: "e", temperature: 9 },
      ],
    });
    expect(accepted.statusCode).toBe(202);
    const batch: BatchBody = accepted.json();
    expect(batch.counts.total).toBe(2);
    expect(batch.invalidCount).toBe(3);
    expect(batch.invalidItems.map((item) => item.index)).toEqual([1, 3, 4]);
    expect(batch.invalidItems[0]?.message).toMatch(/prompt/);
    expect(batch.invalidItems[2]?.message).toMatch(/temperature/);
    const done = await waitForBatch(apiKey, batch.id);
    expect(done).toMatchObject({ status: "completed", counts: { total: 2, completed: 2 } });
    expect(done.invalidItems.map((item) => item.index)).toEqual([1, 3, 4]);
    const results = await request(apiKey, "GET", `/v1/batches/${batch.id}/results`);
    // Indexes are those of the request, invalid ones included.
    expect((results.json() as { data: Json[] }).data.map((item) => item.itemIndex)).toEqual([0, 2]);

    const jsonl = ['{"prompt":"one"}', "{not json", "", '{"prompt":"three"}', '{"prompt":""}'].join("\n");
    const streamed = await request(
      apiKey,
      "POST",
      "/v1/batches?type=text&priority=normal&metadata=%7B%22source%22%3A%22jsonl%22%7D",
      jsonl,
      { "content-type": "application/x-ndjson" },
    );
    expect(streamed.statusCode).toBe(202);
    const fromJsonl: BatchBody = streamed.json();
    expect(fromJsonl).toMatchObject({ priority: "normal", metadata: { source: "jsonl" }, invalidCount: 2 });
    expect(fromJsonl.counts.total).toBe(2);
    expect(fromJsonl.invalidItems).toEqual([
      { index: 1, message: "the line is not valid JSON" },
      { index: 3, message: expect.stringMatching(/prompt/) },
    ]);
    expect((await waitForBatch(apiKey, fromJsonl.id)).counts.completed).toBe(2);
  }, 60_000);

  it("refuses a batch without a valid item, too large, with bad options, a private webhook URL or over quota, storing nothing", async () => {
    const { apiKey, userId } = await harness.createUser();
    const none = await request(apiKey, "POST", "/v1/batches", { type: "text", items: [{ prompt: "" }, 3] });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.details.invalidItems.map((item: Json) => item.index)).toEqual([0, 1]);
    const tooMany = await request(apiKey, "POST", "/v1/batches", {
      type: "text",
      items: Array.from({ length: 100_001 }, () => ({ prompt: "x" })),
    });
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json().error.code).toBe("payload_too_large");
    const badType = await request(apiKey, "POST", "/v1/batches", { type: "video", items: [{ prompt: "x" }] });
    expect(badType.statusCode).toBe(400);
    const badJsonl = await request(apiKey, "POST", "/v1/batches?type=text&priority=soon", '{"prompt":"x"}', {
      "content-type": "application/x-ndjson",
    });
    expect(badJsonl.statusCode).toBe(400);
    expect(badJsonl.json().error.message).toMatch(/querystring\.priority/);
    const privateHook = await request(apiKey, "POST", "/v1/batches", {
      type: "text",
      items: [{ prompt: "x" }],
      webhook: { url: "http://127.0.0.1:9/hook" },
    });
    expect(privateHook.statusCode).toBe(400);
    // Not even one item fits the quota: 429, nothing stored.
    await harness.quota.setUserLimits(userId, { textTokenLimit: 10 });
    const overQuota = await request(apiKey, "POST", "/v1/batches", {
      type: "text",
      items: [{ prompt: "x" }],
    });
    expect(overQuota.statusCode).toBe(429);
    expect(overQuota.json().error.code).toBe("quota_exceeded");
    expect(await harness.db.batch.count({ where: { userId } })).toBe(0);
    expect(await harness.db.job.count({ where: { userId } })).toBe(0);
  }, 60_000);

  it("runs an image batch and links each item's images in the results", async () => {
    const { apiKey } = await harness.createUser();
    const accepted = await request(apiKey, "POST", "/v1/batches", {
      type: "image",
      priority: "normal",
      items: [
        { prompt: "a red square", size: "256x256" },
        { prompt: "" },
        { prompt: "a blue circle", size: "256x256", n: 2 },
      ],
    });
    expect(accepted.statusCode).toBe(202);
    const batch: BatchBody = accepted.json();
    expect(batch.invalidItems.map((item) => item.index)).toEqual([1]);
    expect((await waitForBatch(apiKey, batch.id)).counts).toMatchObject({ total: 2, completed: 2 });
    const results = await request(apiKey, "GET", `/v1/batches/${batch.id}/results`);
    const data = (
      results.json() as { data: Array<{ itemIndex: number; result: { images: Array<{ url: string }> } }> }
    ).data;
    expect(data.map((item) => item.itemIndex)).toEqual([0, 2]);
    expect(data[1]?.result.images).toHaveLength(2);
    const link = data[1]?.result.images[0]?.url ?? "";
    expect(link).toContain("signature=");
    const image = await harness.app.inject({ method: "GET", url: link.replace(/^https?:\/\/[^/]+/, "") });
    expect(image.statusCode).toBe(200);
  }, 60_000);

  it("answers a repeated Idempotency-Key with the same batch, hides batches from other users, and lists them", async () => {
    const { apiKey } = await harness.createUser();
    const body = { type: "text", items: [{ prompt: "once" }] };
    const headers = { "idempotency-key": "batch-key-1" };
    const first = await request(apiKey, "POST", "/v1/batches", body, headers);
    const again = await request(apiKey, "POST", "/v1/batches", body, headers);
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    const different = await request(
      apiKey,
      "POST",
      "/v1/batches",
      { ...body, items: [{ prompt: "twice" }] },
      headers,
    );
    expect(different.statusCode).toBe(409);
    expect(different.json().error.code).toBe("idempotency_conflict");

    const other = await harness.createUser();
    expect((await request(other.apiKey, "GET", `/v1/batches/${first.json().id}`)).statusCode).toBe(404);
    expect((await request(other.apiKey, "GET", `/v1/batches/${first.json().id}/results`)).statusCode).toBe(
      404,
    );
    expect((await request(other.apiKey, "POST", `/v1/batches/${first.json().id}/cancel`)).statusCode).toBe(
      404,
    );

    const list = await request(apiKey, "GET", "/v1/batches?limit=5");
    expect(list.json().data.map((batch: Json) => batch.id)).toEqual([first.json().id]);
  }, 60_000);

  it("cancels a batch midway: pending items are canceled, running ones finish, the batch ends canceled", async () => {
    const { apiKey } = await harness.createUser();
    const items = Array.from({ length: 3_000 }, (_, index) => ({
      prompt: `slow ${index}`,
      providerOptions: { mock: { latencyMs: 100 } },
    }));
    const accepted = await request(apiKey, "POST", "/v1/batches", { type: "text", items });
    expect(accepted.statusCode).toBe(202);
    const { id } = accepted.json() as BatchBody;
    await waitUntil(async () => (await getBatch(apiKey, id)).counts.completed >= 20, 30_000);

    const canceled = await request(apiKey, "POST", `/v1/batches/${id}/cancel`);
    expect(canceled.statusCode).toBe(200);
    expect(canceled.json()).toMatchObject({ cancelRequested: true });
    const done = await waitForBatch(apiKey, id);
    expect(done.status).toBe("canceled");
    const { counts } = done;
    expect(counts.completed + counts.failed + counts.canceled).toBe(3_000);
    expect(counts.completed).toBeGreaterThanOrEqual(20);
    expect(counts.canceled).toBeGreaterThan(2_000);
    expect(counts.failed).toBe(0);
    // Every item is finished in Postgres, and no canceled item ever ran.
    expect(await harness.db.job.count({ where: { batchId: id, status: { in: ["queued", "active"] } } })).toBe(
      0,
    );
    expect(
      await harness.db.job.count({ where: { batchId: id, status: "canceled", startedAt: { not: null } } }),
    ).toBe(0);
    // A canceled batch stays canceled; canceling again changes nothing.
    const repeat = await request(apiKey, "POST", `/v1/batches/${id}/cancel`);
    expect(repeat.statusCode).toBe(200);
    expect(repeat.json().status).toBe("canceled");
  }, 60_000);
});
