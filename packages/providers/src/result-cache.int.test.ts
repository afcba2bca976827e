import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CachedTextResult, ResultCache } from "./result-cache.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const RESULT: CachedTextResult = {
  text: "hello",
  finishReason: "stop",
  provider: "mock",
  model: "mock-1",
  sourceJobId: "0190c1f0-0000-7000-8000-000000000001",
  cachedAt: "2026-11-22T00:00:00.000Z",
};

describe("ResultCache", () => {
  const prefix = `t${randomBytes(5).toString("hex")}`;
  const connections: Redis[] = [];
  const connect = () => {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    connections.push(connection);
    return connection;
  };
  let caches: ResultCache[] = [];

  beforeEach(() => {
    caches = [];
  });
  afterEach(async () => {
    for (const cache of caches) await cache.close();
    const [redis] = connections;
    if (redis !== undefined) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  function cache(scope?: "user" | "shared"): ResultCache {
    const created = new ResultCache({
      redis: connect(),
      subscriber: connect(),
      prefix,
      scope,
    });
    caches.push(created);
    return created;
  }

  it("keys one user's request apart from another's unless the operator shares the cache", () => {
    const request = { provider: "mock", model: "m", messages: "hi", parameters: {} };
    const scoped = cache();
    expect(scoped.textKey({ userId: "alice", ...request })).not.toBe(
      scoped.textKey({ userId: "bob", ...request }),
    );
    const shared = cache("shared");
    expect(shared.textKey({ userId: "alice", ...request })).toBe(
      shared.textKey({ userId: "bob", ...request }),
    );
  });

  it("keys requests by their content, not by key order or absent fields", () => {
    const one = cache();
    const a = one.textKey({
      userId: "alice",
      provider: "mock",
      model: "m",
      messages: [{ role: "user", content: "x" }],
      parameters: { temperature: 0, maxTokens: 5 },
    });
    const b = one.textKey({
      userId: "alice",
      model: "m",
      provider: "mock",
      messages: [{ content: "x", role: "user" }],
      parameters: { maxTokens: 5, temperature: 0, seed: undefined },
    });
    const c = one.textKey({
      userId: "alice",
      provider: "mock",
      model: "m",
      messages: [{ role: "user", content: "y" }],
      parameters: { temperature: 0, maxTokens: 5 },
    });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(a.startsWith(`${prefix}:cache:text:`)).toBe(true);
  });

  it("shares a hit between processes through Redis", async () => {
    const writer = cache();
    const reader = cache();
    const key = writer.textKey({
      userId: "alice",
      provider: "mock",
      model: "m",
      messages: "hi",
      parameters: {},
    });
    expect(await reader.getText(key)).toBeUndefined();
    await writer.setText(key, RESULT);
    expect(await reader.getText(key)).toEqual(RESULT);
  });

  it("clears Redis and every process's in-memory entries", async () => {
    const one = cache();
    const other = cache();
    await Promise.all([one.listen(), other.listen()]);
    const key = one.textKey({
      userId: "alice",
      provider: "mock",
      model: "m",
      messages: "hi",
      parameters: {},
    });
    await one.setText(key, RESULT);
    expect(await other.getText(key)).toEqual(RESULT); // now in `other`'s LRU too
    expect(await one.clear()).toBe(1);
    // The clear travels by pub/sub; `other` drops its LRU when the message arrives.
    const deadline = Date.now() + 5_000;
    while ((await other.getText(key)) !== undefined) {
      if (Date.now() > deadline) throw new Error("the other process kept its entry");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await one.getText(key)).toBeUndefined();
  });
});
