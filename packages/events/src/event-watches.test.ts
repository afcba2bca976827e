import { randomBytes } from "node:crypto";
import type { GenqEvent } from "@genq/core";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventLog } from "./event-log.ts";
import { EventPublisher } from "./event-publisher.ts";
import { type EventSessionOptions, runEventSession } from "./event-session.ts";
import { EventWatches } from "./event-watches.ts";
import { type ParsedSseEvent, SseParser } from "./sse-parser.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Publishing only what someone listens to, over real Redis. Each "process" (an API
 * serving SSE, a worker publishing) has its own producer and subscriber connections,
 * as separate processes do.
 */
describe("EventWatches and the watched-only EventPublisher (real Redis)", () => {
  let prefix: string;
  const connections: Redis[] = [];
  const closers: Array<() => Promise<void> | void> = [];

  function connect(): Redis {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    connections.push(redis);
    return redis;
  }

  /** One process: its connections, its watches (started) and its publisher. */
  async function startProcess(options: { ackTimeoutMs?: number } = {}) {
    const redis = connect();
    const subscriber = connect();
    const watches = new EventWatches({ redis, subscriber, prefix, ...options });
    await watches.start();
    const log = new EventLog({ redis, prefix });
    const publisher = new EventPublisher({ log, watches });
    closers.push(
      () => watches.close(),
      () => publisher.close(),
    );
    return { redis, watches, log, publisher, commands: countCommands(redis) };
  }

  beforeEach(() => {
    prefix = `t${randomBytes(5).toString("hex")}`;
  });

  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    const redis = connect();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  it("sends no Redis command for the events of a job nobody watches", async () => {
    const worker = await startProcess();
    worker.commands.length = 0;
    await worker.publisher.publishJobEvent("j1", "job.started", { id: "j1", attempt: 1 });
    await worker.publisher.publishJobEvent("j1", "job.retrying", { id: "j1", attempt: 1 });
    worker.publisher.publishFinished([finishedEvent("j1", "job.completed")]);
    await worker.publisher.flushBatchProgress();
    expect(worker.commands).toEqual([]);
    expect(await worker.redis.exists(worker.log.key({ kind: "job", id: "j1" }))).toBe(0);
  });

  it("publishes every event of a watched job: once watch() resolves, every process knows, without waiting", async () => {
    const api = await startProcess();
    const workers = [await startProcess(), await startProcess(), await startProcess()];
    for (let round = 0; round < 20; round++) {
      const subject = { kind: "job", id: `w${round}` } as const;
      expect(await api.watches.watch(subject)).toBe(true);
      // No await in between: the announcement must already be in every process's map.
      expect(workers.map((worker) => worker.watches.isWatched(subject))).toEqual([true, true, true]);
    }
    const worker = workers[0]!;
    await worker.publisher.publishJobEvent("w3", "job.started", { id: "w3" });
    worker.publisher.publishFinished([finishedEvent("w3", "job.completed")]);
    await waitFor(async () => (await worker.log.read({ kind: "job", id: "w3" }, "0")).length === 2);
    const types = (await worker.log.read({ kind: "job", id: "w3" }, "0")).map((event) => event.type);
    expect(types).toEqual(["job.started", "job.completed"]);
    // Each append is one script: one command per event, not MULTI/XADD/PEXPIRE/EXEC.
    worker.commands.length = 0;
    await worker.publisher.publishJobEvent("w4", "job.started", { id: "w4" });
    expect(worker.commands).toEqual(["evalsha"]);
  });

  it("knows watches announced before it started (from the snapshot), and forgets them when they lapse", async () => {
    const api = await startProcess();
    expect(await api.watches.watch({ kind: "job", id: "early" })).toBe(true);
    const late = await startProcess();
    expect(late.watches.isWatched({ kind: "job", id: "early" })).toBe(true);
    expect(late.watches.isWatched({ kind: "job", id: "other" })).toBe(false);
    expect(late.watches.isWatched({ kind: "batch", id: "early" })).toBe(false);

    const shortLived = new EventWatches({
      redis: connect(),
      subscriber: connect(),
      prefix,
      leaseMs: 1_000,
    });
    await shortLived.start();
    closers.push(() => shortLived.close());
    expect(await shortLived.watch({ kind: "job", id: "brief" })).toBe(true);
    expect(late.watches.isWatched({ kind: "job", id: "brief" })).toBe(true);
    await waitFor(async () => !late.watches.isWatched({ kind: "job", id: "brief" }), 3_000);
  });

  it("publishes a streaming job's events from job.started on even when nobody watches", async () => {
    const worker = await startProcess();
    // The worker says the job streams: its job.started goes out, so a client joining
    // mid-stream reads it before the text.
    await worker.publisher.publishJobEvent("s1", "job.started", { id: "s1" }, { streaming: true });
    await worker.publisher.publishJobEvent("s1", "job.delta", { id: "s1", delta: "Hel" });
    await worker.publisher.publishJobEvent("s1", "job.delta", { id: "s1", delta: "lo" });
    worker.publisher.publishFinished([finishedEvent("s1", "job.completed")]);
    await waitFor(async () => (await worker.log.read({ kind: "job", id: "s1" }, "0")).length === 4);
    const types = (await worker.log.read({ kind: "job", id: "s1" }, "0")).map((event) => event.type);
    expect(types).toEqual(["job.started", "job.delta", "job.delta", "job.completed"]);
    // Without the word, a job's job.started is published only when watched.
    await worker.publisher.publishJobEvent("s2", "job.started", { id: "s2" });
    await worker.publisher.publishJobEvent("s2", "job.delta", { id: "s2", delta: "Hi" });
    await waitFor(async () => (await worker.log.read({ kind: "job", id: "s2" }, "0")).length === 1);
    expect((await worker.log.read({ kind: "job", id: "s2" }, "0")).map((event) => event.type)).toEqual([
      "job.delta",
    ]);
  });

  it("publishes a batch's events only while someone watches the batch", async () => {
    const api = await startProcess();
    const reads: string[] = [];
    const redis = connect();
    const log = new EventLog({ redis, prefix });
    const watches = new EventWatches({ redis, subscriber: connect(), prefix });
    await watches.start();
    const worker = new EventPublisher({
      log,
      watches,
      batchProgress: {
        intervalMs: 60_000,
        read: async (batchId) => {
          reads.push(batchId);
          return { id: batchId, status: "running" };
        },
      },
    });
    closers.push(
      () => worker.close(),
      () => watches.close(),
    );
    worker.publishFinished([
      { ...finishedEvent("item-1", "job.completed"), batchId: "b-quiet" },
      { ...finishedEvent(null, "batch.completed"), batchId: "b-quiet" },
    ]);
    await worker.flushBatchProgress();
    expect(reads).toEqual([]);
    expect(await redis.exists(log.key({ kind: "batch", id: "b-quiet" }))).toBe(0);

    expect(await api.watches.watch({ kind: "batch", id: "b-watched" })).toBe(true);
    worker.publishFinished([{ ...finishedEvent("item-2", "job.completed"), batchId: "b-watched" }]);
    await worker.flushBatchProgress();
    expect(reads).toEqual(["b-watched"]);
    worker.publishFinished([{ ...finishedEvent(null, "batch.completed"), batchId: "b-watched" }]);
    await waitFor(async () => (await log.read({ kind: "batch", id: "b-watched" }, "0")).length === 2);
  });

  describe("an SSE session against a publisher that skips unwatched jobs", () => {
    /** Runs a session to its end; `row` is the job's status as Postgres would say. */
    async function session(
      api: Awaited<ReturnType<typeof startProcess>>,
      options: Partial<EventSessionOptions> & Pick<EventSessionOptions, "finished" | "subject">,
    ) {
      const received: ParsedSseEvent[] = [];
      const parser = new SseParser({ onEvent: (event) => received.push(event) });
      const reader = await api.log.openReader();
      try {
        const end = await runEventSession({
          log: api.log,
          afterId: "0",
          reader,
          // Far beyond the test's timeout: the terminal event must come through the stream.
          heartbeatMs: 60_000,
          signal: new AbortController().signal,
          send: async (text) => parser.push(text),
          watches: api.watches,
          ...options,
        });
        return { end, received };
      } finally {
        reader.disconnect();
      }
    }

    it("gets the real terminal event when the job finishes right after the listener read the row", async () => {
      const api = await startProcess();
      const worker = await startProcess();
      for (let round = 0; round < 15; round++) {
        const jobId = `race${round}`;
        let finished = false;
        const result = await session(api, {
          subject: { kind: "job", id: jobId },
          finished: async () => {
            if (finished)
              return { event: { type: "job.completed", data: { id: jobId } }, finishedAt: new Date() };
            // The worst moment: the row was read "running", and the worker commits and
            // publishes at once, before the session's first stream read.
            finished = true;
            worker.publisher.publishFinished([finishedEvent(jobId, "job.completed")]);
            return undefined;
          },
        });
        expect(result.end).toBe("terminal");
        expect(result.received.map((event) => [event.event, event.hasId])).toEqual([["job.completed", true]]);
      }
    }, 20_000);

    it("re-reads the row every second, not every heartbeat, while a stalled process has not acknowledged the watch", async () => {
      const api = await startProcess({ ackTimeoutMs: 100 });
      // A worker whose subscription receives announcements but never acknowledges (stalled):
      // it may have decided not to publish, so the session cannot wait for its event.
      const stalled = connect();
      await stalled.subscribe(`${prefix}:events:watch`);
      let reads = 0;
      const started = Date.now();
      const result = await session(api, {
        subject: { kind: "job", id: "unconfirmed" },
        unconfirmedRecheckMs: 50,
        finished: async () => {
          reads += 1;
          // Finished after the first read, its terminal event never published.
          return reads === 1
            ? undefined
            : { event: { type: "job.completed", data: { id: "unconfirmed" } }, finishedAt: new Date() };
        },
      });
      expect(result.end).toBe("synthesized");
      expect(result.received.map((event) => [event.event, event.hasId])).toEqual([["job.completed", false]]);
      // The heartbeat is 60 s: the old session waited that long before it looked at the row again.
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("gives a job finished before anyone listened its terminal event at once, synthesized from the row", async () => {
      const api = await startProcess();
      const worker = await startProcess();
      worker.publisher.publishFinished([finishedEvent("done", "job.completed")]);
      const started = Date.now();
      const result = await session(api, {
        subject: { kind: "job", id: "done" },
        finished: async () => ({
          event: { type: "job.completed", data: { id: "done" } },
          finishedAt: new Date(),
        }),
      });
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(result.end).toBe("synthesized");
      expect(result.received.map((event) => [event.event, event.hasId])).toEqual([["job.completed", false]]);
    });

    it("starts with the running job's current state, then every later event; resumes after Last-Event-ID", async () => {
      const api = await startProcess();
      const worker = await startProcess();
      // Started while nobody listened: not published.
      await worker.publisher.publishJobEvent("run", "job.started", { id: "run", attempt: 1 });
      let finished = false;
      const live = session(api, {
        subject: { kind: "job", id: "run" },
        finished: async () =>
          finished
            ? { event: { type: "job.completed", data: { id: "run" } }, finishedAt: new Date() }
            : undefined,
        current: async () => ({ type: "job.started", data: { id: "run", status: "active", attempt: 1 } }),
      });
      await waitFor(async () => (await api.log.read({ kind: "job", id: "run" }, "0")).length === 1);
      await worker.publisher.publishJobEvent("run", "job.progress", { id: "run", percent: 50 });
      finished = true;
      worker.publisher.publishFinished([finishedEvent("run", "job.completed")]);
      const first = await live;
      expect(first.end).toBe("terminal");
      expect(first.received.map((event) => [event.event, event.hasId])).toEqual([
        ["job.started", true],
        ["job.progress", true],
        ["job.completed", true],
      ]);
      const resumed = await session(api, {
        subject: { kind: "job", id: "run" },
        afterId: first.received[0]!.id!,
        finished: async () => ({
          event: { type: "job.completed", data: { id: "run" } },
          finishedAt: new Date(),
        }),
      });
      expect(resumed.received.map((event) => event.id)).toEqual(
        first.received.slice(1).map((event) => event.id),
      );
    });
  });
});

function finishedEvent(jobId: string | null, type: string): GenqEvent {
  return {
    type,
    userId: "u",
    jobId,
    batchId: null,
    webhookUrl: null,
    timestamp: new Date(),
    data: { id: jobId, status: "completed" },
  } as GenqEvent;
}

/** The names of the commands `redis` sends from now on (instrumentation of ioredis, not a mock). */
function countCommands(redis: Redis): string[] {
  const names: string[] = [];
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    names.push(command.name);
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof redis.sendCommand;
  return names;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
