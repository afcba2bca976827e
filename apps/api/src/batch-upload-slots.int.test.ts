import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchUploadSlots } from "./batch-upload-slots.ts";

const prefix = `t${randomBytes(5).toString("hex")}`;
let redis: Redis;

beforeAll(() => {
  redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe("BatchUploadSlots", () => {
  it("gives each user its own slots, shared by every process, and takes a released one back", async () => {
    // Two instances stand for two API processes.
    const first = new BatchUploadSlots({ redis, prefix, perUser: 2 });
    const second = new BatchUploadSlots({ redis, prefix, perUser: 2 });
    const held = [await first.acquire("alice"), await second.acquire("alice")];
    expect(held.every((lease) => lease !== undefined)).toBe(true);
    expect(await first.acquire("alice")).toBeUndefined();
    const bob = await second.acquire("bob");
    expect(bob).toBeDefined();
    await held[0]?.release();
    await held[0]?.release();
    const again = await second.acquire("alice");
    expect(again).toBeDefined();
    expect(await first.acquire("alice")).toBeUndefined();
    await Promise.all([held[1]?.release(), again?.release(), bob?.release()]);
  });

  it("frees the slot of a process that died mid-upload once its lease expires", async () => {
    const slots = new BatchUploadSlots({ redis, prefix, perUser: 1, leaseMs: 60_000 });
    // A lease left by a dead process: never renewed, expired a moment ago.
    await redis.zadd(`${prefix}:batch-uploads:carol`, Date.now() - 1, "dead-process-lease");
    const lease = await slots.acquire("carol");
    expect(lease).toBeDefined();
    expect(await slots.acquire("carol")).toBeUndefined();
    await lease?.release();
  });
});
