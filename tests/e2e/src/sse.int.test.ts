import { buildApp } from "@genq/api";
import { eventStreamKey, type ParsedSseEvent, SseParser } from "@genq/events";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

/**
 * Live events over a real listening API and a real SSE client (fetch + a stream
 * parser; Node 20 has no EventSource). Jobs run on a SPAWNED worker process, so
 * every non-terminal and terminal event a client sees crossed processes through
 * Redis; jobs are submitted through another API instance (the harness's).
 */

const HEARTBEAT_MS = 200;

interface StreamRead {
  status: number;
  contentType: string | null;
  events: ParsedSseEvent[];
  comments: string[];
  /** Events and comments in arrival order ("comment" entries for comments). */
  sequence: string[];
  retry: number | undefined;
  /** True when the server ended the stream (not the client). */
  endedByServer: boolean;
  body: string;
}

describe("server-sent events", () => {
  const harness = new Harness();
  let sse: FastifyInstance;
  let base: string;
  let apiKey: string;
  let otherKey: string;

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    await harness.spawnWorker();
    sse = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      docs: false,
      events: { heartbeatMs: HEARTBEAT_MS },
    });
    const address = await sse.listen({ port: 0, host: "127.0.0.1" });
    base = address;
    ({ apiKey } = await harness.createUser());
    ({ apiKey: otherKey } = await harness.createUser());
  });

  afterAll(async () => {
    await sse?.close();
    await harness.close();
  });

  /** Reads a stream until the server closes it, or until `stopAfter` holds (then the client leaves). */
  async function read(
    path: string,
    options: {
      key?: string;
      lastEventId?: string;
      stopAfter?: (events: ParsedSseEvent[]) => boolean;
      timeoutMs?: number;
    } = {},
  ): Promise<StreamRead> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error("stream read timed out")),
      options.timeoutMs ?? 20_000,
    );
    const response = await fetch(`${base}${path}`, {
      headers: {
        authorization: `Bearer ${options.key ?? apiKey}`,
        accept: "text/event-stream",
        ...(options.lastEventId === undefined ? {} : { "last-event-id": options.lastEventId }),
      },
      signal: controller.signal,
    });
    const result: StreamRead = {
      status: response.status,
      contentType: response.headers.get("content-type"),
      events: [],
      comments: [],
      sequence: [],
      retry: undefined,
      endedByServer: false,
      body: "",
    };
    let stop = false;
    const parser = new SseParser({
      onEvent: (event) => {
        result.events.push(event);
        result.sequence.push(event.event);
        if (options.stopAfter?.(result.events)) stop = true;
      },
      onComment: (comment) => {
        result.comments.push(comment);
        result.sequence.push("comment");
      },
      onRetry: (retry) => {
        result.retry = retry;
      },
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          result.endedByServer = true;
          break;
        }
        result.body += value;
        parser.push(value);
        if (stop) {
          controller.abort();
          break;
        }
      }
    } finally {
      clearTimeout(timer);
      reader.releaseLock();
    }
    return result;
  }

  async function submitText(input: Record<string, unknown>): Promise<string> {
    const response = await harness.submit(apiKey, { type: "text", input });
    expect(response.statusCode).toBe(202);
    return response.json().id;
  }

  /** The stream's entries as Redis holds them: the reference for gaps and duplicates. */
  async function streamEntries(
    kind: "job" | "batch",
    id: string,
  ): Promise<Array<{ id: string; type: string }>> {
    const entries = await harness.redis.xrange(eventStreamKey(harness.prefix, { kind, id }), "-", "+");
    return entries.map(([entryId, fields]) => ({
      id: entryId,
      type: fields[fields.indexOf("type") + 1] ?? "",
    }));
  }

  it("streams a job's events, published by another process, in order to the terminal one; then the server closes", async () => {
    expect(harness.worker).toBeUndefined(); // every job runs in the spawned worker process
    const id = await submitText({ prompt: "events in order", providerOptions: { mock: { latencyMs: 300 } } });
    const stream = await read(`/v1/jobs/${id}/events`);
    expect(stream.status).toBe(200);
    expect(stream.contentType).toMatch(/^text\/event-stream/);
    expect(stream.retry).toBeGreaterThan(0);
    expect(stream.endedByServer).toBe(true);
    expect(stream.events.map((event) => event.event)).toEqual(["job.started", "job.completed"]);
    expect(JSON.parse(stream.events[0]!.data)).toMatchObject({ id, status: "active", attempt: 1 });
    expect(JSON.parse(stream.events[1]!.data)).toMatchObject({ id, object: "job", status: "completed" });
    // The SSE ids are the Redis stream's entry ids, all of them, in order.
    expect(stream.events.map((event) => ({ id: event.id, type: event.event }))).toEqual(
      await streamEntries("job", id),
    );
    expect((await harness.getJob(apiKey, id)).status).toBe("completed");
  });

  it("streams the deltas of a text job run with stream: true; they add up to the result text", async () => {
    const id = await submitText({
      prompt: "please stream a reply that has quite a few words in it",
      stream: true,
      providerOptions: { mock: { deltaDelayMs: 15 } },
    });
    const stream = await read(`/v1/jobs/${id}/events`);
    const types = stream.events.map((event) => event.event);
    expect(types[0]).toBe("job.started");
    expect(types.at(-1)).toBe("job.completed");
    const deltas = stream.events.filter((event) => event.event === "job.delta");
    expect(deltas.length).toBeGreaterThanOrEqual(2);
    expect(types.slice(1, -1).every((type) => type === "job.delta")).toBe(true);
    const text = deltas.map((event) => JSON.parse(event.data).delta as string).join("");
    const job = await harness.getJob(apiKey, id);
    expect(job.status).toBe("completed");
    expect(text).toBe((job.result as { text: string }).text);
    // Coalesced: never more events than the mock's word-sized deltas.
    expect(deltas.length).toBeLessThanOrEqual(text.split(/\s+/).length);
  });

  it("gives a client that joins a streaming job mid-text its job.started first, once, then the text so far", async () => {
    const id = await submitText({
      prompt: "a reply streamed slowly enough that a client can join it halfway through its words",
      stream: true,
      providerOptions: { mock: { deltaDelayMs: 40 } },
    });
    // Nobody listened while it started: join once some text is out.
    await waitUntil(
      async () => (await streamEntries("job", id)).some((entry) => entry.type === "job.delta"),
      10_000,
    );
    const stream = await read(`/v1/jobs/${id}/events`);
    const types = stream.events.map((event) => event.event);
    expect(types[0]).toBe("job.started");
    expect(types.filter((type) => type === "job.started")).toHaveLength(1);
    expect(types.at(-1)).toBe("job.completed");
    const text = stream.events
      .filter((event) => event.event === "job.delta")
      .map((event) => JSON.parse(event.data).delta as string)
      .join("");
    expect(text).toBe(((await harness.getJob(apiKey, id)).result as { text: string }).text);
  });

  it("tells a streaming client to start over with job.retrying, then streams the next attempt", async () => {
    const id = await submitText({
      prompt: "streamed after a failed attempt",
      stream: true,
      // The router retries once within an attempt: two failures fail attempt 1, the job retries.
      providerOptions: { mock: { fail: "provider_unavailable", failTimes: 2 } },
    });
    const stream = await read(`/v1/jobs/${id}/events`);
    const types = stream.events.map((event) => event.event);
    expect(types.slice(0, 3)).toEqual(["job.started", "job.retrying", "job.started"]);
    expect(types.at(-1)).toBe("job.completed");
    const data = stream.events.map((event) => JSON.parse(event.data) as Record<string, unknown>);
    expect(data[1]).toMatchObject({ attempt: 1, status: "queued", error: { code: "provider_unavailable" } });
    expect(data[2]).toMatchObject({ attempt: 2 });
    const deltas = data.filter((_, index) => types[index] === "job.delta");
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.every((delta) => delta.attempt === 2)).toBe(true);
    const job = await harness.getJob(apiKey, id);
    expect(deltas.map((delta) => delta.delta).join("")).toBe((job.result as { text: string }).text);
  });

  it("voids text streamed by an attempt that broke mid-stream: job.retrying, then the next attempt's text", async () => {
    const id = await submitText({
      prompt: "a stream that breaks halfway through the first time it runs",
      stream: true,
      providerOptions: { mock: { streamBreaks: 1, deltaDelayMs: 20 } },
    });
    const stream = await read(`/v1/jobs/${id}/events`);
    const types = stream.events.map((event) => event.event);
    const data = stream.events.map((event) => JSON.parse(event.data) as Record<string, unknown>);
    const retrying = types.indexOf("job.retrying");
    expect(retrying).toBeGreaterThan(1);
    expect(types.slice(1, retrying).every((type) => type === "job.delta")).toBe(true);
    expect(types[retrying + 1]).toBe("job.started");
    expect(types.at(-1)).toBe("job.completed");
    const textOf = (attempt: number) =>
      data
        .filter((entry, index) => types[index] === "job.delta" && entry.attempt === attempt)
        .map((entry) => entry.delta)
        .join("");
    const result = ((await harness.getJob(apiKey, id)).result as { text: string }).text;
    // A client that drops the text before each job.retrying ends up with the result.
    expect(textOf(2)).toBe(result);
    expect(textOf(1).length).toBeGreaterThan(0);
    expect(result.startsWith(textOf(1))).toBe(true);
    expect(textOf(1)).not.toBe(result);
  });

  it("resumes with Last-Event-ID mid-stream without gaps or duplicates (header and query)", async () => {
    const id = await submitText({
      prompt: "a long streamed reply to interrupt in the middle of its generation",
      stream: true,
      providerOptions: { mock: { deltaDelayMs: 40 } },
    });
    const first = await read(`/v1/jobs/${id}/events`, {
      stopAfter: (events) => events.filter((event) => event.event === "job.delta").length >= 2,
    });
    expect(first.endedByServer).toBe(false);
    const lastId = first.events.at(-1)!.id!;
    const second = await read(`/v1/jobs/${id}/events`, { lastEventId: lastId });
    expect(second.endedByServer).toBe(true);
    expect(second.events.at(-1)!.event).toBe("job.completed");
    // The job was still running when the first client left: the second saw new deltas.
    expect(second.events.some((event) => event.event === "job.delta")).toBe(true);

    const all = await streamEntries("job", id);
    const combined = [...first.events, ...second.events].map((event) => ({
      id: event.id,
      type: event.event,
    }));
    expect(combined).toEqual(all);
    expect(new Set(combined.map((event) => event.id)).size).toBe(combined.length);

    // ?lastEventId= for clients that cannot set headers: exactly the rest after that entry.
    const middle = all[Math.floor(all.length / 2)]!;
    const fromQuery = await read(`/v1/jobs/${id}/events?lastEventId=${encodeURIComponent(middle.id)}`);
    expect(fromQuery.events.map((event) => event.id)).toEqual(
      all.slice(all.indexOf(middle) + 1).map((entry) => entry.id),
    );
  });

  it("sends heartbeat comments while a stream is idle", async () => {
    const id = await submitText({
      prompt: "slow one",
      providerOptions: { mock: { latencyMs: 5 * HEARTBEAT_MS } },
    });
    const stream = await read(`/v1/jobs/${id}/events`);
    expect(stream.comments).toContain("keep-alive");
    expect(stream.body).toContain(": keep-alive\n\n");
    const started = stream.sequence.indexOf("job.started");
    const completed = stream.sequence.indexOf("job.completed");
    expect(started).toBeGreaterThanOrEqual(0);
    expect(stream.sequence.slice(started, completed)).toContain("comment");
  });

  it("publishes nothing for a job nobody watched; a client connecting after it finished gets its terminal event at once, from the row", async () => {
    const id = await submitText({ prompt: "done before anyone listens" });
    await harness.waitForJob(apiKey, id);
    const stream = await read(`/v1/jobs/${id}/events`);
    expect(stream.endedByServer).toBe(true);
    expect(stream.events).toHaveLength(1);
    expect(stream.events[0]).toMatchObject({ event: "job.completed", hasId: false });
    expect(JSON.parse(stream.events[0]!.data)).toMatchObject({ id, status: "completed" });
    expect(stream.comments).toEqual([]); // no heartbeat was needed: nothing was waited for
    // Nobody listened while it ran: the worker wrote no stream for it.
    expect(await streamEntries("job", id)).toEqual([]);
  });

  it("gives a watched job's terminal event from the row when Redis lost its stream", async () => {
    const id = await submitText({
      prompt: "watched, then lost",
      providerOptions: { mock: { latencyMs: 300 } },
    });
    const watched = await read(`/v1/jobs/${id}/events`);
    expect(watched.events.at(-1)).toMatchObject({ event: "job.completed", hasId: true });
    // The stream expired (or Redis lost its data): the row says how it ended.
    await harness.redis.del(eventStreamKey(harness.prefix, { kind: "job", id }));
    const lost = await read(`/v1/jobs/${id}/events`);
    expect(lost.endedByServer).toBe(true);
    expect(lost.events).toHaveLength(1);
    expect(lost.events[0]).toMatchObject({ event: "job.completed", hasId: false });
    expect(JSON.parse(lost.events[0]!.data)).toMatchObject({ id, status: "completed" });
  });

  it("does not leave a client hanging when a terminal publish was lost: the row is checked at heartbeats", async () => {
    const id = await submitText({ prompt: "lost publish", providerOptions: { mock: { latencyMs: 20_000 } } });
    const reading = read(`/v1/jobs/${id}/events`);
    await waitUntil(
      async () => (await streamEntries("job", id)).some((entry) => entry.type === "job.started"),
      10_000,
    );
    // A transition whose after-commit publish never happened (a crash right after COMMIT).
    await harness.db.job.update({
      where: { id },
      data: {
        status: "failed",
        errorCode: "internal_error",
        errorMessage: "lost",
        finishedAt: new Date(Date.now() - 10_000),
      },
    });
    const stream = await reading;
    expect(stream.endedByServer).toBe(true);
    expect(stream.events.map((event) => event.event)).toEqual(["job.started", "job.failed"]);
    expect(stream.events[1]).toMatchObject({ hasId: false });
    expect(JSON.parse(stream.events[1]!.data)).toMatchObject({
      id,
      status: "failed",
      error: { code: "internal_error" },
    });
  });

  it("streams a canceled job's job.canceled, published by the API that canceled it", async () => {
    const id = await submitText({ prompt: "to cancel", providerOptions: { mock: { latencyMs: 20_000 } } });
    const reading = read(`/v1/jobs/${id}/events`);
    await waitUntil(
      async () => (await streamEntries("job", id)).some((entry) => entry.type === "job.started"),
      10_000,
    );
    expect((await harness.cancel(apiKey, id)).statusCode).toBeLessThan(300);
    const stream = await reading;
    expect(stream.events.at(-1)!.event).toBe("job.canceled");
    expect(stream.events.at(-1)!.hasId).toBe(true);
  });

  it("answers 404 for unknown and foreign ids and 400 for a malformed Last-Event-ID, before any stream", async () => {
    const id = await submitText({ prompt: "owned" });
    const foreign = await read(`/v1/jobs/${id}/events`, { key: otherKey });
    expect(foreign.status).toBe(404);
    expect(JSON.parse(foreign.body)).toMatchObject({ error: { code: "not_found" } });
    expect((await read("/v1/jobs/0190aaaa-0000-7000-8000-000000000000/events")).status).toBe(404);
    expect((await read("/v1/jobs/not-an-id/events")).status).toBe(404);
    expect((await read("/v1/batches/0190aaaa-0000-7000-8000-000000000000/events")).status).toBe(404);
    const malformed = await read(`/v1/jobs/${id}/events`, { lastEventId: "banana" });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body)).toMatchObject({ error: { code: "invalid_request" } });
    expect((await read(`/v1/jobs/${id}/events`, { key: "gq_invalid" })).status).toBe(401);
  });

  it("releases the stream's Redis connection when the client disconnects", async () => {
    const readers = async () =>
      ((await harness.redis.client("LIST")) as string)
        .split("\n")
        .filter((line) => / name=genq-sse /.test(line)).length;
    const before = await readers();
    const id = await submitText({ prompt: "left early", providerOptions: { mock: { latencyMs: 20_000 } } });
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/jobs/${id}/events`, {
      headers: { authorization: `Bearer ${apiKey}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    await waitUntil(async () => (await readers()) === before + 1, 5_000);
    controller.abort();
    await waitUntil(async () => (await readers()) === before, 5_000);
    expect((await harness.cancel(apiKey, id)).statusCode).toBeLessThan(300);
  });

  it("answers 503 beyond the per-process stream cap", async () => {
    const capped = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      docs: false,
      events: { heartbeatMs: HEARTBEAT_MS, maxStreams: 1 },
    });
    const address = await capped.listen({ port: 0, host: "127.0.0.1" });
    try {
      const id = await submitText({ prompt: "capped", providerOptions: { mock: { latencyMs: 20_000 } } });
      const headers = { authorization: `Bearer ${apiKey}` };
      const controller = new AbortController();
      const first = await fetch(`${address}/v1/jobs/${id}/events`, { headers, signal: controller.signal });
      expect(first.status).toBe(200);
      const second = await fetch(`${address}/v1/jobs/${id}/events`, { headers });
      expect(second.status).toBe(503);
      expect(await second.json()).toMatchObject({ error: { code: "service_unavailable" } });
      controller.abort();
      expect((await harness.cancel(apiKey, id)).statusCode).toBeLessThan(300);
    } finally {
      await capped.close();
    }
  });

  it("streams a batch's progress and ends with batch.completed", async () => {
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: {
        type: "text",
        items: Array.from({ length: 6 }, (_, index) => ({
          prompt: `batch item ${index}`,
          // Items finish over about 3 s, so progress (about once a second) shows before the end.
          providerOptions: { mock: { latencyMs: 500 * (index + 1) } },
        })),
      },
    });
    expect(response.statusCode, response.body).toBe(202);
    const batchId: string = response.json().id;
    const stream = await read(`/v1/batches/${batchId}/events`);
    expect(stream.endedByServer).toBe(true);
    const types = stream.events.map((event) => event.event);
    expect(types.at(-1)).toBe("batch.completed");
    expect(types.slice(0, -1).every((type) => type === "batch.progress")).toBe(true);
    expect(types.length).toBeGreaterThanOrEqual(2);
    const progress = stream.events.slice(0, -1).map((event) => JSON.parse(event.data).progress as number);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(JSON.parse(stream.events.at(-1)!.data)).toMatchObject({
      id: batchId,
      object: "batch",
      status: "completed",
      counts: { total: 6, completed: 6, queued: 0 },
      progress: 100,
    });
    expect(stream.events.map((event) => ({ id: event.id, type: event.event }))).toEqual(
      await streamEntries("batch", batchId),
    );
    // Another user cannot watch it.
    expect((await read(`/v1/batches/${batchId}/events`, { key: otherKey })).status).toBe(404);
  });
});
