import { randomBytes } from "node:crypto";
import { PRIORITIES, type QueuedJobPayload } from "@genq/core";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobQueues } from "./job-queues.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Queue positions read from real BullMQ queues in real Redis. */
describe("JobQueues.position (real Redis, real BullMQ)", () => {
  let prefix: string;
  let redis: Redis;
  let queues: JobQueues;
  const workers: Worker[] = [];
  const connections: Redis[] = [];

  beforeEach(() => {
    prefix = `t${randomBytes(5).toString("hex")}`;
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    queues = new JobQueues({ connection: redis, prefix });
  });

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.close();
    for (const connection of connections.splice(0)) connection.disconnect();
    await queues.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("counts the jobs BullMQ hands out first: by priority, then by arrival", async () => {
    await queues.enqueue({ id: "n1", type: "text", priority: PRIORITIES.normal });
    await queues.enqueue({ id: "n2", type: "text", priority: PRIORITIES.normal });
    await queues.enqueue({ id: "low", type: "text", priority: PRIORITIES.low });
    // Later but more urgent: ahead of every normal and low job.
    await queues.enqueue({ id: "u1", type: "text", priority: PRIORITIES.urgent });
    await queues.enqueue({ id: "other-type", type: "image", priority: PRIORITIES.urgent });

    const ahead = async (id: string) => {
      const position = await queues.position("text", id);
      return position.state === "waiting" ? position.ahead : position.state;
    };
    expect(await ahead("u1")).toBe(0);
    expect(await ahead("n1")).toBe(1);
    expect(await ahead("n2")).toBe(2);
    expect(await ahead("low")).toBe(3);
    // Nothing finished yet: no rate to estimate from.
    expect(await queues.position("text", "n2")).toEqual({
      state: "waiting",
      ahead: 2,
      etaSeconds: undefined,
    });
  });

  it("tells a delayed job by when it is due back, and a job BullMQ does not have as held", async () => {
    const dueAt = Date.now() + 30_000;
    await queues
      .queue("text")
      .add("text", { jobId: "later" }, { jobId: "later", priority: PRIORITIES.normal, delay: 30_000 });
    const delayed = await queues.position("text", "later");
    expect(delayed.state).toBe("delayed");
    if (delayed.state !== "delayed") return;
    expect(Math.abs(delayed.dueAt.getTime() - dueAt)).toBeLessThan(1_000);
    expect(delayed.etaSeconds).toBeGreaterThanOrEqual(29);
    expect(delayed.etaSeconds).toBeLessThanOrEqual(31);
    expect(await queues.position("text", "not-in-bullmq")).toEqual({ state: "held" });
  });

  it("estimates the start from how fast the queue drained lately, and moves up as jobs ahead finish", async () => {
    for (let index = 0; index < 40; index++) {
      await queues.enqueue({ id: `j${index}`, type: "text", priority: PRIORITIES.normal });
    }
    const before = await queues.position("text", "j39");
    expect(before).toMatchObject({ state: "waiting", ahead: 39 });
    // One job at a time, 50 ms each: about 20 jobs a second.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(connection);
    const worker = new Worker<QueuedJobPayload>(
      "text",
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return "done";
      },
      { connection, prefix, concurrency: 1 },
    );
    workers.push(worker);
    const deadline = Date.now() + 20_000;
    let position = await queues.position("text", "j39");
    while (position.state === "waiting" && position.ahead > 19 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      position = await queues.position("text", "j39");
    }
    await worker.pause();
    position = await queues.position("text", "j39");
    expect(position.state).toBe("waiting");
    if (position.state !== "waiting") return;
    expect(position.ahead).toBeLessThan(20);
    // 20 jobs a second at best (50 ms each), well under 1 s of work left per 20 jobs: the ETA
    // is in whole seconds, at least (ahead + 1) / 20 and not wildly more.
    expect(position.etaSeconds).toBeDefined();
    expect(position.etaSeconds).toBeGreaterThanOrEqual(Math.ceil((position.ahead + 1) / 20));
    expect(position.etaSeconds).toBeLessThanOrEqual(Math.ceil((position.ahead + 1) / 5));
  });
});
