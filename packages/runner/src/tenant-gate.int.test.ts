import { randomBytes, randomUUID } from "node:crypto";
import { type AddressInfo, connect as connectTcp, createServer } from "node:net";
import type { QueuedJobPayload } from "@genq/core";
import { createRedisConnection, JobQueues } from "@genq/queue";
import { type Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TenantGate } from "./tenant-gate.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** Far beyond the test: a parked job that runs again did so because it was woken. */
const PARK_MS = 120_000;

/**
 * The tenant gate over real Redis and BullMQ. Each gate stands for one worker
 * process, with its own connections.
 */
describe("TenantGate (real Redis)", () => {
  let prefix: string;
  let producer: Redis;
  let queues: JobQueues;
  let worker: Worker<QueuedJobPayload>;
  const connections: Redis[] = [];
  const gates: TenantGate[] = [];

  function connect(role: "producer" | "subscriber" | "worker"): Redis {
    const redis = createRedisConnection({ url: REDIS_URL, role });
    redis.on("error", () => {});
    connections.push(redis);
    return redis;
  }

  async function startGate(): Promise<{ gate: TenantGate; commands: string[] }> {
    const redis = connect("producer");
    await waitFor(() => redis.status === "ready");
    const gate = new TenantGate({
      queues,
      redis,
      subscriber: connect("subscriber"),
      logger: pino({ level: "silent" }),
      tenantCap: 1,
      parkMs: PARK_MS,
    });
    await gate.start();
    gates.push(gate);
    return { gate, commands: countCommands(redis) };
  }

  it("starts on a connection that is still connecting (as a worker's start makes it)", async () => {
    // A proxy that holds each connection 300 ms before it reaches Redis: the gate's
    // connection is still connecting when start reads the recently parked owners.
    const target = new URL(REDIS_URL);
    const proxy = createServer((client) => {
      client.on("error", () => {});
      setTimeout(() => {
        const upstream = connectTcp(Number(target.port || 6379), target.hostname);
        upstream.on("error", () => client.destroy());
        client.pipe(upstream).pipe(client);
      }, 300);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const slow = createRedisConnection({ url: `redis://127.0.0.1:${port}`, role: "producer" });
      slow.on("error", () => {});
      connections.push(slow);
      const gate = new TenantGate({
        queues,
        redis: slow,
        subscriber: connect("subscriber"),
        logger: pino({ level: "silent" }),
        tenantCap: 1,
        parkMs: PARK_MS,
      });
      gates.push(gate);
      await expect(gate.start()).resolves.toBeUndefined();
    } finally {
      proxy.close();
    }
  });

  /** Adds a text job and takes it as a worker would: active, with its lock token. */
  async function activeJob(): Promise<{ job: Job<QueuedJobPayload>; token: string }> {
    const jobId = randomUUID();
    await queues.queue("text").add("text", { jobId }, { jobId });
    const token = randomUUID();
    const job = (await worker.getNextJob(token)) as Job<QueuedJobPayload> | undefined;
    if (job === undefined) throw new Error("no job to take");
    return { job, token };
  }

  beforeEach(async () => {
    prefix = `t${randomBytes(5).toString("hex")}`;
    producer = connect("producer");
    await waitFor(() => producer.status === "ready");
    queues = new JobQueues({ connection: producer, prefix });
    worker = new Worker<QueuedJobPayload>(queues.definition("text").name, null, {
      connection: connect("worker"),
      prefix,
    });
  });

  afterEach(async () => {
    for (const gate of gates.splice(0)) await gate.close();
    await worker.close();
    await queues.close();
    const keys = await producer.keys(`${prefix}:*`);
    if (keys.length > 0) await producer.del(...keys);
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  it("sends no Redis command to wake for a tenant with nothing parked", async () => {
    const { gate, commands } = await startGate();
    await gate.wake("user-without-parked-jobs");
    await gate.wake("user-without-parked-jobs");
    expect(commands).toEqual([]);
  });

  it("parks in one round trip, and another process's finished job wakes the parked one", async () => {
    const parking = await startGate();
    const finishing = await startGate();
    const { job, token } = await activeJob();
    parking.commands.length = 0;
    await parking.gate.park(job, "u1", token);
    // BullMQ moves the job to the delayed set on the job's connection; the gate's own part is one script.
    expect(parking.commands).toEqual(["evalsha"]);
    expect(await job.getState()).toBe("delayed");
    // The announcement reaches the other process within moments; its wake then promotes.
    await waitFor(async () => {
      await finishing.gate.wake("u1");
      return (await job.getState()) === "waiting";
    });
    // Nothing left to wake: the next finished job of u1 finds the set empty.
    finishing.commands.length = 0;
    await finishing.gate.wake("u1");
    expect(finishing.commands).toEqual(["zpopmin"]);
  });

  it("wakes at once in a process started after the park (it reads the recent owners)", async () => {
    const parking = await startGate();
    const { job, token } = await activeJob();
    await parking.gate.park(job, "u2", token);
    const late = await startGate();
    await late.gate.wake("u2");
    expect(await job.getState()).toBe("waiting");
  });

  it("skips a parked member that came back by itself and wakes the next one", async () => {
    const { gate } = await startGate();
    const first = await activeJob();
    await gate.park(first.job, "u3", first.token);
    const second = await activeJob();
    await gate.park(second.job, "u3", second.token);
    // The first one's delay ran out meanwhile: it is waiting, no longer delayed.
    await first.job.promote();
    await gate.wake("u3");
    expect(await second.job.getState()).toBe("waiting");
  });
});

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

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
