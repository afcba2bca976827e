import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobQueues } from "./job-queues.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

describe("JobQueues.holdLease (real Redis)", () => {
  let prefix: string;
  let redis: Redis;
  let queues: JobQueues;

  beforeEach(() => {
    prefix = `t${randomBytes(5).toString("hex")}`;
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    queues = new JobQueues({ connection: redis, prefix });
  });

  afterEach(async () => {
    await queues.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("keeps the lease for its holder across renewals and keeps everyone else out until it lapses", async () => {
    expect(await queues.holdLease("pass", "a", 60_000)).toBe(true);
    expect(await queues.holdLease("pass", "b", 60_000)).toBe(false);
    // Its own unexpired lease does not lock the holder out (acquireLease's NX would): renewed.
    await redis.pexpire(`${prefix}:lease:pass`, 50);
    expect(await queues.holdLease("pass", "a", 60_000)).toBe(true);
    expect(await redis.pttl(`${prefix}:lease:pass`)).toBeGreaterThan(50_000);
    expect(await queues.holdLease("pass", "b", 60_000)).toBe(false);
    // Lapsed (the holder died): the next one takes it.
    await redis.del(`${prefix}:lease:pass`);
    expect(await queues.holdLease("pass", "b", 60_000)).toBe(true);
    expect(await queues.holdLease("pass", "a", 60_000)).toBe(false);
  });

  it("gives up a lease only for its holder: a stopping holder's successor takes it at once", async () => {
    expect(await queues.holdLease("pass", "a", 60_000)).toBe(true);
    // Not b's to give up.
    await queues.releaseLease("pass", "b");
    expect(await queues.holdLease("pass", "b", 60_000)).toBe(false);
    await queues.releaseLease("pass", "a");
    expect(await queues.holdLease("pass", "b", 60_000)).toBe(true);
    // a's late release (it held the lease once) leaves b's alone.
    await queues.releaseLease("pass", "a");
    expect(await redis.get(`${prefix}:lease:pass`)).toBe("b");
  });
});
