import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventLog } from "./event-log.ts";
import { EventPublisher } from "./event-publisher.ts";
import { runEventSession } from "./event-session.ts";
import { type ParsedSseEvent, SseParser } from "./sse-parser.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("EventLog (real Redis)", () => {
  let redis: Redis;
  let prefix: string;

  beforeEach(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    prefix = `t${randomBytes(5).toString("hex")}`;
  });

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("appends a job.started identical to the newest entry once: a listener's snapshot and the worker's own event", async () => {
    const log = new EventLog({ redis, prefix });
    const subject = { kind: "job", id: "started-twice" } as const;
    const started = (attempt: number) => ({
      subject,
      type: "job.started",
      data: { id: "started-twice", object: "job", status: "active", attempt },
    });
    // The SSE session's snapshot of the running job, then the worker's publish of the same attempt.
    expect(await log.appendIfEmpty(started(1))).toBeDefined();
    expect(await log.append([started(1)])).toEqual([]);
    // Deltas repeat freely; a later attempt's job.started is a new event.
    const delta = { subject, type: "job.delta", data: { id: "started-twice", attempt: 1, delta: "the " } };
    expect(await log.append([delta, delta])).toHaveLength(2);
    expect(await log.append([started(2)])).toHaveLength(1);
    expect((await log.read(subject, "0")).map((event) => [event.type, event.data.attempt])).toEqual([
      ["job.started", 1],
      ["job.delta", 1],
      ["job.delta", 1],
      ["job.started", 2],
    ]);
  });

  it("appends in order, bounds the stream and sets its retention", async () => {
    const log = new EventLog({ redis, prefix, maxLength: 10, retentionMs: 60_000 });
    const subject = { kind: "job", id: "job-1" } as const;
    const ids: string[] = [];
    for (let index = 0; index < 500; index++) {
      ids.push(...(await log.append([{ subject, type: "job.delta", data: { index } }])));
    }
    expect([...ids].sort(compareIds)).toEqual(ids);
    // MAXLEN ~ trims whole nodes: about maxLength entries stay, never all 500.
    expect(await redis.xlen(log.key(subject))).toBeLessThan(500);
    const ttl = await redis.pttl(log.key(subject));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("shortens a stream's retention once its terminal event is in", async () => {
    const log = new EventLog({ redis, prefix, retentionMs: 60_000, finishedRetentionMs: 5_000 });
    const subject = { kind: "job", id: "short" } as const;
    await log.append([{ subject, type: "job.started", data: {} }]);
    expect(await redis.pttl(log.key(subject))).toBeGreaterThan(50_000);
    await log.append([{ subject, type: "job.completed", data: {} }]);
    const ttl = await redis.pttl(log.key(subject));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });

  it("reads exactly the events after an id, none twice", async () => {
    const log = new EventLog({ redis, prefix });
    const subject = { kind: "batch", id: "b" } as const;
    const ids = await log.append(
      Array.from({ length: 5 }, (_, index) => ({ subject, type: "batch.progress", data: { index } })),
    );
    const all = await log.read(subject, "0");
    expect(all.map((event) => event.id)).toEqual(ids);
    expect(all.map((event) => event.data.index)).toEqual([0, 1, 2, 3, 4]);
    const rest = await log.read(subject, ids[1]!);
    expect(rest.map((event) => event.data.index)).toEqual([2, 3, 4]);
    expect(await log.read(subject, ids[4]!)).toEqual([]);
    expect(log.key(subject)).toBe(`${prefix}:events:batch:b`);
  });

  it("wakes a blocked reader on its own connection when an event is appended", async () => {
    const log = new EventLog({ redis, prefix });
    const subject = { kind: "job", id: "j" } as const;
    const reader = await log.openReader();
    try {
      const pending = log.read(subject, "$", { blockMs: 5_000, connection: reader });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await log.append([{ subject, type: "job.started", data: { attempt: 1 } }]);
      const events = await pending;
      expect(events.map((event) => event.type)).toEqual(["job.started"]);
    } finally {
      reader.disconnect();
    }
  });

  it("streams a session to the terminal event, then synthesizes one for a finished row without it", async () => {
    const log = new EventLog({ redis, prefix });
    const publisher = new EventPublisher({ log });
    const subject = { kind: "job", id: "j2" } as const;
    await publisher.publishJobEvent("j2", "job.started", { attempt: 1 });
    const received: ParsedSseEvent[] = [];
    const comments: string[] = [];
    const parser = new SseParser({
      onEvent: (event) => received.push(event),
      onComment: (comment) => comments.push(comment),
    });
    const reader = await log.openReader();
    let finished = false;
    const session = runEventSession({
      log,
      subject,
      afterId: "0",
      reader,
      heartbeatMs: 100,
      signal: new AbortController().signal,
      send: async (text) => parser.push(text),
      finished: async () =>
        finished
          ? { event: { type: "job.completed", data: { id: "j2" } }, finishedAt: new Date() }
          : undefined,
    });
    await waitFor(() => comments.length > 0);
    publisher.publishFinished([
      {
        type: "job.completed",
        userId: "u",
        jobId: "j2",
        batchId: null,
        webhookUrl: null,
        timestamp: new Date(),
        data: { id: "j2", status: "completed" },
      },
    ]);
    expect(await session).toBe("terminal");
    reader.disconnect();
    expect(received.map((event) => event.event)).toEqual(["job.started", "job.completed"]);
    expect(received.every((event) => event.hasId)).toBe(true);

    // A finished row whose stream lost the terminal event: synthesized after the grace.
    finished = true;
    const lostReader = await log.openReader();
    const synthesized: ParsedSseEvent[] = [];
    const lostParser = new SseParser({ onEvent: (event) => synthesized.push(event) });
    const end = await runEventSession({
      log,
      subject: { kind: "job", id: "lost" },
      afterId: "0",
      reader: lostReader,
      heartbeatMs: 1_000,
      terminalGraceMs: 100,
      signal: new AbortController().signal,
      send: async (text) => lostParser.push(text),
      finished: async () => ({ event: { type: "job.failed", data: { id: "lost" } }, finishedAt: new Date() }),
    });
    lostReader.disconnect();
    expect(end).toBe("synthesized");
    expect(synthesized).toEqual([
      { id: undefined, hasId: false, event: "job.failed", data: '{"id":"lost"}' },
    ]);
  });
});

describe("EventPublisher while Redis is down", () => {
  it("never throws, and warns once per interval instead of once per event", async () => {
    const down = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    down.on("error", () => {});
    const warnings: string[] = [];
    const publisher = new EventPublisher({
      log: new EventLog({ redis: down, prefix: "unused" }),
      logger: { warn: (_object, message) => warnings.push(message) },
    });
    for (let index = 0; index < 5; index++) {
      await expect(publisher.publishJobEvent("j", "job.delta", { delta: "x" })).resolves.toBeUndefined();
    }
    expect(() => publisher.publishFinished([])).not.toThrow();
    expect(warnings).toHaveLength(1);
    down.disconnect();
  });
});

describe("runEventSession (real Redis)", () => {
  it("ends when the client goes away, and waits no longer than the grace for a row finished 'in the future'", async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const prefix = `t${randomBytes(5).toString("hex")}`;
    const log = new EventLog({ redis, prefix });
    try {
      const reader = await log.openReader();
      const controller = new AbortController();
      const comments: string[] = [];
      const parser = new SseParser({ onEvent: () => {}, onComment: (comment) => comments.push(comment) });
      const session = runEventSession({
        log,
        subject: { kind: "job", id: "idle" },
        afterId: "0",
        reader,
        heartbeatMs: 50,
        signal: controller.signal,
        send: async (text) => parser.push(text),
        finished: async () => undefined,
      });
      await waitFor(() => comments.length >= 2);
      controller.abort();
      reader.disconnect(); // what the API does on a client's disconnect: ends the blocked read
      expect(await session).toBe("aborted");

      // A worker clock an hour ahead: the terminal event is synthesized after the grace anyway.
      const skewed = await log.openReader();
      const started = Date.now();
      const end = await runEventSession({
        log,
        subject: { kind: "job", id: "skewed" },
        afterId: "0",
        reader: skewed,
        heartbeatMs: 1_000,
        terminalGraceMs: 200,
        signal: new AbortController().signal,
        send: async () => {},
        finished: async () => ({
          event: { type: "job.completed", data: {} },
          finishedAt: new Date(Date.now() + 3_600_000),
        }),
      });
      skewed.disconnect();
      expect(end).toBe("synthesized");
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      redis.disconnect();
    }
  });
});

describe("EventPublisher batch progress (real Redis)", () => {
  it("publishes one coalesced batch.progress per interval across processes, read after the latest change", async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const prefix = `t${randomBytes(5).toString("hex")}`;
    try {
      const log = new EventLog({ redis, prefix });
      let finished = 0;
      const read = async (batchId: string) => ({ id: batchId, counts: { completed: finished } });
      // Two processes' publishers; a long interval so only explicit flushes run.
      const first = new EventPublisher({ log, batchProgress: { read, intervalMs: 60_000 } });
      const second = new EventPublisher({ log, batchProgress: { read, intervalMs: 60_000 } });
      const itemFinished = (publisher: EventPublisher, jobId: string) => {
        finished += 1;
        publisher.publishFinished([
          {
            type: "job.completed",
            userId: "u",
            jobId,
            batchId: "b1",
            webhookUrl: null,
            timestamp: new Date(),
            data: { id: jobId },
          },
          // The hooks' throttled progress event: replaced by the coalesced one on live streams.
          {
            type: "batch.progress",
            userId: "u",
            jobId: null,
            batchId: "b1",
            webhookUrl: null,
            timestamp: new Date(),
            data: { id: "b1" },
          },
        ]);
      };
      itemFinished(first, "j1");
      itemFinished(first, "j2");
      itemFinished(second, "j3");
      await first.flushBatchProgress();
      await second.flushBatchProgress(); // gated: the first published this interval
      let batch = await log.read({ kind: "batch", id: "b1" }, "0");
      expect(batch.map((event) => [event.type, event.data.counts])).toEqual([
        ["batch.progress", { completed: 3 }],
      ]);
      // The second keeps its mark and publishes once the gate lapses.
      await redis.del(`${prefix}:events:batch:b1:progress-gate`);
      await second.flushBatchProgress();
      batch = await log.read({ kind: "batch", id: "b1" }, "0");
      expect(batch).toHaveLength(2);
      expect((await log.read({ kind: "job", id: "j3" }, "0")).map((event) => event.type)).toEqual([
        "job.completed",
      ]);
      first.close();
      second.close();
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});

function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-").map(BigInt);
  const [bMs, bSeq] = b.split("-").map(BigInt);
  if (aMs !== bMs) return aMs! < bMs! ? -1 : 1;
  return aSeq! < bSeq! ? -1 : aSeq! > bSeq! ? 1 : 0;
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
