import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { WebhookSlots } from "./webhook-slots.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("WebhookSlots", () => {
  const prefix = `t${randomBytes(5).toString("hex")}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });

  afterAll(() => redis.disconnect());

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  const slots = (leaseMs = 60_000) =>
    new WebhookSlots({ redis, prefix, perTenant: 3, perTarget: 2, leaseMs });

  it("gives one target at most its share and one tenant at most its own, across holders", async () => {
    const limiter = slots();
    const taken = await Promise.all(
      ["a", "b", "c"].map((holder) => limiter.acquire("alice", "endpoint:slow", holder)),
    );
    expect(taken.filter(Boolean)).toHaveLength(2);
    expect(await limiter.acquire("alice", "endpoint:other", "d")).toBe(true);
    // Alice holds 3: her next delivery waits, whatever its target; Bob's does not.
    expect(await limiter.acquire("alice", "endpoint:third", "e")).toBe(false);
    expect(await limiter.acquire("bob", "endpoint:slow", "f")).toBe(true);

    await limiter.release("alice", "endpoint:slow", "a");
    expect(await limiter.acquire("alice", "endpoint:third", "e")).toBe(true);
  });

  it("frees the slot of a holder that never gives it back once its lease ends", async () => {
    const limiter = slots(200);
    expect(await limiter.acquire("carol", "endpoint:x", "dead-1")).toBe(true);
    expect(await limiter.acquire("carol", "endpoint:x", "dead-2")).toBe(true);
    expect(await limiter.acquire("carol", "endpoint:x", "next")).toBe(false);
    const refusedAt = Date.now();
    while (!(await limiter.acquire("carol", "endpoint:x", "next"))) {
      expect(Date.now() - refusedAt).toBeLessThan(2_000);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });

  it("refuses limits that are not positive integers", () => {
    expect(() => new WebhookSlots({ redis, prefix, perTenant: 0, perTarget: 1, leaseMs: 1 })).toThrow(
      /perTenant/,
    );
  });
});
