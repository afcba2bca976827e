import {
  AuthenticationError,
  ConflictError,
  GenqClient,
  GenqError,
  InvalidRequestError,
  type LiveEvent,
  NotFoundError,
  WebhookVerificationError,
} from "@genq/client";
import { renderPng } from "@genq/providers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startListeningHarness, WebhookReceiver } from "./client-api.ts";
import type { Harness } from "./harness.ts";

describe("@genq/client against a real API and worker", () => {
  let harness: Harness;
  let url: string;
  let apiKey: string;
  let genq: GenqClient;
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    await receiver.start();
    ({ harness, url } = await startListeningHarness({
      workerEnv: { GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" },
    }));
    ({ apiKey } = await harness.createUser(undefined, "enterprise"));
    genq = new GenqClient({ baseUrl: url, apiKey });
  });

  afterAll(async () => {
    await harness?.close();
    await receiver.close();
  });

  it("submits a text job and waits for its typed result", async () => {
    const job = await genq.jobs.create({ type: "text", input: { prompt: "Say hello to the client" } });
    expect(job).toMatchObject({ type: "text", status: "queued" });
    const done = await genq.jobs.wait(job.id, { timeoutMs: 20_000 });
    expect(done.status).toBe("completed");
    if (done.type !== "text" || done.result === null) throw new Error("expected a text result");
    expect(done.result.text).toContain("Say hello to the client");
    expect(done.result.provider).toBe("mock");
    expect(done.calls.length).toBeGreaterThan(0);
  });

  it("sends a fresh Idempotency-Key with each create, so a replay of the same request answers the same job", async () => {
    const sent: Array<string | null> = [];
    const recording = new GenqClient({
      baseUrl: url,
      apiKey,
      fetch: (input, init) => {
        sent.push(new Headers(init?.headers).get("idempotency-key"));
        return fetch(input, init);
      },
    });
    const body = { type: "text" as const, input: { prompt: "idempotent" } };
    const first = await recording.jobs.create(body);
    const second = await recording.jobs.create(body);
    expect(first.id).not.toBe(second.id);
    expect(sent).toHaveLength(2);
    expect(sent[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sent[1]).not.toBe(sent[0]);
    // The key the client chose makes a repeat of the request answer the first job.
    const replay = await harness.submit(apiKey, body, { "idempotency-key": sent[0] ?? "" });
    expect(replay.statusCode).toBe(200);
    expect(replay.json().id).toBe(first.id);
    const same = await recording.jobs.create(body, { idempotencyKey: sent[1] ?? "" });
    expect(same.id).toBe(second.id);
  });

  it("throws typed errors carrying status, code, message and request id", async () => {
    const missing = await genq.jobs
      .get("0195f0c2-0000-7000-8000-000000000001")
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: "not_found" });
    expect((missing as GenqError).requestId).toMatch(/^[0-9a-f-]{36}$/);

    const invalid = await genq.jobs
      .create({ type: "text", input: { prompt: "" } })
      .catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(InvalidRequestError);
    expect(invalid).toMatchObject({ status: 400, code: "invalid_request" });
    expect((invalid as Error).message).toContain("prompt");

    const stranger = new GenqClient({ baseUrl: url, apiKey: "gq_not_a_key" });
    const refused = await stranger.usage.get().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AuthenticationError);
    expect(GenqError.is(refused) && refused.code).toBe("unauthorized");
  });

  it("lists jobs newest first and cancels a running one", async () => {
    const slow = await genq.jobs.create({
      type: "text",
      input: { prompt: "slow", providerOptions: { mock: { latencyMs: 60_000 } } },
    });
    const page = await genq.jobs.list({ limit: 2 });
    expect(page.object).toBe("list");
    expect(page.data[0]?.id).toBe(slow.id);
    const canceled = await genq.jobs.cancel(slow.id);
    expect(canceled.status === "canceled" || canceled.cancelRequested).toBe(true);
    const done = await genq.jobs.wait(slow.id, { timeoutMs: 20_000 });
    expect(done.status).toBe("canceled");
    const again = await genq.jobs.cancel(slow.id).catch((error: unknown) => error);
    // Canceling a canceled job changes nothing or is a conflict; it is never a 5xx.
    if (again instanceof Error) expect(again).toBeInstanceOf(ConflictError);
  });

  it("streams a job's live events and resumes after a Last-Event-ID without repeating one", async () => {
    const job = await genq.jobs.create({
      type: "text",
      input: { prompt: "stream these words to the client please", stream: true },
    });
    const events: LiveEvent[] = [];
    for await (const event of genq.events.stream(job.id)) events.push(event);
    const last = events.at(-1);
    expect(last?.type).toBe("job.completed");
    const deltas = events.flatMap((event) => (event.type === "job.delta" ? [event.data.delta] : []));
    const done = await genq.jobs.get(job.id);
    if (done.type !== "text") throw new Error("expected a text job");
    expect(deltas.join("")).toBe(done.result?.text);

    const withIds = events.filter((event) => event.id !== undefined);
    expect(withIds.length).toBeGreaterThan(1);
    const resumeAfter = withIds[0]!;
    const resumed: LiveEvent[] = [];
    for await (const event of genq.events.stream(job.id, { lastEventId: resumeAfter.id }))
      resumed.push(event);
    expect(resumed.map((event) => event.id)).toEqual(
      events.slice(events.indexOf(resumeAfter) + 1).map((event) => event.id),
    );
  });

  it("waits by polling when live events are refused", async () => {
    const eventsRequests: string[] = [];
    const noEvents = new GenqClient({
      baseUrl: url,
      apiKey,
      maxRetries: 0,
      fetch: (input, init) => {
        const target = String(input);
        if (target.includes("/events")) {
          eventsRequests.push(target);
          return Promise.resolve(
            Response.json({ error: { code: "rate_limited", message: "too many streams" } }, { status: 429 }),
          );
        }
        return fetch(input, init);
      },
    });
    const job = await noEvents.jobs.create({ type: "text", input: { prompt: "polled" } });
    const done = await noEvents.jobs.wait(job.id, { timeoutMs: 20_000, pollIntervalMs: 50 });
    expect(done.status).toBe("completed");
    expect(eventsRequests.length).toBeLessThanOrEqual(1);
  });

  it("submits JSON and streamed JSONL batches, waits for them and iterates their results", async () => {
    const json = await genq.batches.create({
      type: "text",
      items: [{ prompt: "first" }, { prompt: "second" }, { prompt: "" }],
    });
    expect(json.counts.total).toBe(2);
    expect(json.invalidCount).toBe(1);
    expect(json.invalidItems[0]?.index).toBe(2);

    async function* items() {
      for (let index = 0; index < 5; index++) yield { prompt: `line ${index}` };
    }
    const jsonl = await genq.batches.create({ type: "text", priority: "low", jsonl: items() });
    expect(jsonl.counts.total).toBe(5);

    const finished = await genq.batches.wait(jsonl.id, { timeoutMs: 30_000 });
    expect(finished.status).toBe("completed");
    const results = [];
    for await (const item of genq.batches.results(jsonl.id)) results.push(item);
    expect(results.map((item) => item.itemIndex)).toEqual([0, 1, 2, 3, 4]);
    const texts = results.map((item) =>
      item.result !== null && "text" in item.result ? item.result.text : "",
    );
    expect(texts[3]).toContain("line 3");

    expect((await genq.batches.wait(json.id, { timeoutMs: 30_000 })).counts.completed).toBe(2);
    expect((await genq.batches.get(json.id)).status).toBe("completed");
    const listed = await genq.batches.list({ limit: 5 });
    expect(listed.data.map((batch) => batch.id)).toContain(json.id);
  });

  it("cancels a batch", async () => {
    const batch = await genq.batches.create({
      type: "text",
      items: [{ prompt: "a", providerOptions: { mock: { latencyMs: 60_000 } } }],
    });
    const canceled = await genq.batches.cancel(batch.id);
    expect(canceled.cancelRequested).toBe(true);
    expect((await genq.batches.wait(batch.id, { timeoutMs: 20_000 })).status).toBe("canceled");
  });

  it("uploads an image as multipart and reads its dimensions back", async () => {
    const png = renderPng({ width: 16, height: 8, seed: "client" });
    const upload = await genq.uploads.create(new Uint8Array(png), { filename: "client.png" });
    expect(upload).toMatchObject({ contentType: "image/png", width: 16, height: 8, bytes: png.byteLength });
    expect((await genq.uploads.get(upload.id)).sha256).toBe(upload.sha256);
  });

  it("reads usage and quota", async () => {
    const usage = await genq.usage.get({ groupBy: "type" });
    expect(usage.totals.jobs).toBeGreaterThan(0);
    expect(usage.quota.plan).toBe("enterprise");
  });

  it("verifies a real genq-signed webhook delivery and rejects tampered, re-signed and expired ones", async () => {
    const job = await genq.jobs.create({
      type: "text",
      input: { prompt: "tell my webhook" },
      webhook: { url: receiver.url },
    });
    const delivery = await receiver.next(job.id);
    const { secret } = await genq.webhooks.secret();
    const event = await genq.webhooks.verify(delivery.body, delivery.headers, secret);
    expect(event.type).toBe("job.completed");
    if (event.type !== "job.completed") throw new Error("expected job.completed");
    expect(event.data.id).toBe(job.id);
    expect(event.data.links.job).toBe(`/v1/jobs/${job.id}`);

    const reject = (promise: Promise<unknown>) =>
      promise.then(
        () => "verified",
        (error: unknown) => error,
      );
    const tampered = delivery.body.replace('"completed"', '"failed"');
    expect(await reject(genq.webhooks.verify(tampered, delivery.headers, secret))).toBeInstanceOf(
      WebhookVerificationError,
    );
    const otherSecret = `whsec_${btoa("another secret of 24 bytes")}`;
    expect(await reject(genq.webhooks.verify(delivery.body, delivery.headers, otherSecret))).toBeInstanceOf(
      WebhookVerificationError,
    );
    const later = new Date(Date.now() + 10 * 60_000);
    const expired = await reject(
      genq.webhooks.verify(delivery.body, delivery.headers, secret, { now: later }),
    );
    expect(expired).toBeInstanceOf(WebhookVerificationError);
    expect((expired as Error).message).toContain("too old");
  });
});
