import { Readable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { buildApp } from "@genq/api";
import { createPrismaClient, type Database } from "@genq/db";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

/**
 * Batch uploads cannot take the API down (issue 12, item 4): a slow JSONL body
 * holds no database connection, a huge line is refused at once, each user has a
 * few uploads at a time, and an exhausted pool answers 503 instead of hanging.
 * Also: replays before the quota, and the per-key limit on other writes (item 9).
 */
let harness: Harness;

beforeAll(async () => {
  // No worker: the batches and jobs only have to be stored.
  harness = await new Harness().start({ startWorker: false });
}, 60_000);

afterAll(async () => {
  await harness?.close();
});

// The heap is measured after full collections, so garbage does not count as held memory.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** A gate a test opens once. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * A JSONL body that sends `before` lines, reports it, waits for `resume`, then
 * sends `after` lines: a client trickling its upload, held mid-body by the test.
 */
function trickle(before: number, after: number, resume: Promise<void>) {
  const sent = gate();
  const body = Readable.from(
    (async function* () {
      for (let index = 0; index < before; index++) yield Buffer.from(`{"prompt":"item ${index}"}\n`);
      sent.open();
      await resume;
      for (let index = before; index < before + after; index++)
        yield Buffer.from(`{"prompt":"item ${index}"}\n`);
    })(),
  );
  return { body, sent: sent.opened };
}

function postJsonl(app: FastifyInstance, apiKey: string, payload: Readable | Buffer | string) {
  return app.inject({
    method: "POST",
    url: "/v1/batches?type=text",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/x-ndjson" },
    payload,
  });
}

/** Resolves with the response, or rejects after `ms` (a hang is a failure, not a stuck test). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("batch uploads", () => {
  it("keeps another user's GET /v1/jobs fast and /health/ready ready while ten slow JSONL uploads are in flight", async () => {
    const uploaders = await Promise.all(Array.from({ length: 10 }, () => harness.createUser()));
    const bystander = await harness.createUser();
    const list = () =>
      harness.app.inject({
        method: "GET",
        url: "/v1/jobs",
        headers: { authorization: `Bearer ${bystander.apiKey}` },
      });
    // Warm: the first request of a route compiles its serializer.
    expect((await list()).statusCode).toBe(200);
    const resume = gate();
    const uploads = uploaders.map(({ apiKey }) => {
      const { body, sent } = trickle(50, 50, resume.opened);
      return { sent, response: postJsonl(harness.app, apiKey, body) };
    });
    try {
      // Every upload is mid-body now, and stays there until the gate opens.
      await within(10_000, "the uploads' first lines", Promise.all(uploads.map((upload) => upload.sent)));
      for (let round = 0; round < 5; round++) {
        const started = performance.now();
        const listed = await within(5_000, "GET /v1/jobs", list());
        const elapsed = performance.now() - started;
        expect(listed.statusCode).toBe(200);
        expect(elapsed).toBeLessThan(200);
        const ready = await within(5_000, "/health/ready", harness.app.inject("/health/ready"));
        expect(ready.json()).toEqual({ status: "ok", checks: { redis: "ok", postgres: "ok" } });
      }
    } finally {
      resume.open();
    }
    const responses = await within(
      60_000,
      "the uploads",
      Promise.all(uploads.map((upload) => upload.response)),
    );
    for (const response of responses) {
      expect(response.statusCode, response.body).toBe(202);
      expect(response.json().counts.total).toBe(100);
    }
  }, 90_000);

  it("stores a 100,000-item JSONL batch (40 MiB) while the heap it holds stays under 40 MiB", async () => {
    const { apiKey } = await harness.createUser();
    const padding = "p".repeat(400);
    const body = Readable.from(
      (function* () {
        for (let start = 0; start < 100_000; start += 500) {
          const lines: string[] = [];
          for (let index = start; index < start + 500; index++)
            lines.push(JSON.stringify({ prompt: `item ${index} ${padding}` }));
          yield Buffer.from(`${lines.join("\n")}\n`);
        }
      })(),
    );
    collectGarbage();
    const baseline = process.memoryUsage().heapUsed;
    let held = 0;
    const sample = () => {
      collectGarbage();
      held = Math.max(held, process.memoryUsage().heapUsed - baseline);
    };
    const sampler = setInterval(sample, 1_000);
    const response = await postJsonl(harness.app, apiKey, body).finally(() => clearInterval(sampler));
    sample();
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json().counts.total).toBe(100_000);
    expect(held / 1024 / 1024).toBeLessThan(40);
  }, 120_000);

  it("refuses a 16 MiB line without a newline with 413 naming the line, without waiting for the rest of the body", async () => {
    const { apiKey } = await harness.createUser();
    // 16 MiB of one line, then the client stalls: only an early refusal can answer.
    const stalled = gate();
    const body = Readable.from(
      (async function* () {
        yield Buffer.from('{"prompt":"short"}\n');
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        for (let index = 0; index < 256; index++) yield chunk;
        await stalled.opened;
      })(),
    );
    try {
      const response = await within(10_000, "the 413", postJsonl(harness.app, apiKey, body));
      expect(response.statusCode).toBe(413);
      expect(response.json().error).toMatchObject({
        code: "payload_too_large",
        details: { line: 2, maxLineBytes: 1024 * 1024 },
      });
      expect(response.json().error.message).toContain("line 2");
    } finally {
      stalled.open();
      body.destroy();
    }
  });

  it("refuses a JSON batch body over 16 MiB with 413 (bigger batches go as JSONL, streamed)", async () => {
    const { apiKey } = await harness.createUser();
    const prompt = "x".repeat(1_000);
    const items = Array.from({ length: 17_000 }, () => ({ prompt }));
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { type: "text", items },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({
      code: "payload_too_large",
      details: { limitBytes: 16 * 1024 * 1024 },
    });
  });

  it("lets a user upload two batches at once and answers a third 429 with Retry-After", async () => {
    const { apiKey } = await harness.createUser();
    const resume = gate();
    const held = [trickle(5, 5, resume.opened), trickle(5, 5, resume.opened)];
    const pending = held.map(({ body }) => postJsonl(harness.app, apiKey, body));
    try {
      await within(10_000, "the held uploads' first lines", Promise.all(held.map(({ sent }) => sent)));
      const third = await within(
        10_000,
        "the third upload",
        postJsonl(harness.app, apiKey, '{"prompt":"x"}\n'),
      );
      expect(third.statusCode).toBe(429);
      expect(third.headers["retry-after"]).toBeDefined();
      expect(third.json().error).toMatchObject({ code: "rate_limited", details: { limit: 2 } });
      expect(third.json().error.message).toContain("at most 2");
    } finally {
      resume.open();
    }
    for (const response of await Promise.all(pending)) expect(response.statusCode).toBe(202);
    // The slots are given back when the requests end.
    const after = await postJsonl(harness.app, apiKey, '{"prompt":"x"}\n');
    expect(after.statusCode).toBe(202);
  });

  it("answers 503 with Retry-After when no database connection frees up in time, instead of hanging", async () => {
    const { apiKey } = await harness.createUser();
    const small: Database = createPrismaClient({
      connectionString: harness.database.url,
      maxConnections: 1,
      connectionTimeoutMs: 300,
    });
    const app = await buildApp({
      db: small,
      redis: harness.redis,
      queues: harness.queues,
      quota: harness.quota,
      logger: false,
      admin: ADMIN,
      docs: false,
    });
    const release = gate();
    const holding = gate();
    // Something holds the pool's only connection for longer than the timeout.
    const held = small.$transaction(
      async (transaction) => {
        await transaction.$queryRawUnsafe("SELECT 1");
        holding.open();
        await release.opened;
      },
      { timeout: 30_000 },
    );
    try {
      await holding.opened;
      const response = await within(
        10_000,
        "GET /v1/jobs",
        app.inject({ method: "GET", url: "/v1/jobs", headers: { authorization: `Bearer ${apiKey}` } }),
      );
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBeDefined();
      expect(response.json().error.code).toBe("service_unavailable");
    } finally {
      release.open();
      await held;
      await app.close();
      await small.$disconnect();
    }
  });
});

describe("idempotent replays", () => {
  it("answers a replayed job with the same job, 200, even once the quota is full", async () => {
    const { userId, apiKey } = await harness.createUser();
    const body = { type: "text", input: { prompt: "replay me", maxTokens: 100 } };
    const first = await harness.submit(apiKey, body, { "idempotency-key": "replay-job-1" });
    expect(first.statusCode).toBe(202);
    await harness.quota.setUserLimits(userId, { textTokenLimit: 1 });
    const fresh = await harness.submit(apiKey, body, { "idempotency-key": "replay-job-2" });
    expect(fresh.statusCode).toBe(429);
    const replay = await harness.submit(apiKey, body, { "idempotency-key": "replay-job-1" });
    expect(replay.statusCode, replay.body).toBe(200);
    expect(replay.json().id).toBe(first.json().id);
  });

  it("answers a replayed batch with the same batch, 200, even once the quota is full", async () => {
    const { userId, apiKey } = await harness.createUser();
    const body = {
      type: "text",
      items: [
        { prompt: "a", maxTokens: 100 },
        { prompt: "b", maxTokens: 100 },
      ],
    };
    const post = (key: string) =>
      harness.app.inject({
        method: "POST",
        url: "/v1/batches",
        headers: { authorization: `Bearer ${apiKey}`, "idempotency-key": key },
        payload: body,
      });
    const first = await post("replay-batch-1");
    expect(first.statusCode).toBe(202);
    await harness.quota.setUserLimits(userId, { textTokenLimit: 1 });
    expect((await post("replay-batch-2")).statusCode).toBe(429);
    const replay = await post("replay-batch-1");
    expect(replay.statusCode, replay.body).toBe(200);
    expect(replay.json().id).toBe(first.json().id);
  });
});

describe("write rate limit", () => {
  it("limits every other write per API key with 429 and Retry-After, leaving reads, submissions and other keys alone", async () => {
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      quota: harness.quota,
      storage: harness.storage,
      logger: false,
      admin: ADMIN,
      docs: false,
      writeRateLimitPerMinute: 3,
    });
    try {
      const alice = await harness.createUser();
      const bob = await harness.createUser();
      const write = (apiKey: string, method: "POST" | "DELETE", url: string, payload?: object) =>
        app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${apiKey}` },
          ...(payload === undefined ? {} : { payload }),
        });
      // Three writes on different routes share one budget: an endpoint, a provider key removal, an upload.
      const answered = [
        await write(alice.apiKey, "POST", "/v1/webhook-endpoints", { url: "https://example.com/hook" }),
        await write(alice.apiKey, "DELETE", "/v1/provider-keys/openai"),
        await write(alice.apiKey, "POST", "/v1/uploads", { not: "multipart" }),
      ];
      for (const response of answered) expect(response.statusCode).not.toBe(429);
      const refused = await write(alice.apiKey, "POST", "/v1/webhook-endpoints", {
        url: "https://example.com/hook-2",
      });
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
      expect(refused.json().error.code).toBe("rate_limited");
      expect(refused.json().error.message).toContain("at most 3 per minute per API key");
      // Reads, submissions (their own limit) and another key still pass.
      const list = await app.inject({
        method: "GET",
        url: "/v1/webhook-endpoints",
        headers: { authorization: `Bearer ${alice.apiKey}` },
      });
      expect(list.statusCode).toBe(200);
      const job = await app.inject({
        method: "POST",
        url: "/v1/jobs",
        headers: { authorization: `Bearer ${alice.apiKey}` },
        payload: { type: "text", input: { prompt: "still allowed" } },
      });
      expect(job.statusCode).toBe(202);
      expect((await write(bob.apiKey, "POST", "/v1/no-such-route")).statusCode).toBe(404);
      const other = await write(bob.apiKey, "POST", "/v1/webhook-endpoints", {
        url: "https://example.com/bob",
      });
      expect(other.statusCode).not.toBe(429);
    } finally {
      await app.close();
    }
  });
});
