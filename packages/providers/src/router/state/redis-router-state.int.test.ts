import { randomBytes, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AcquireRequest, AcquireResult, BreakerPolicy, KeyLimits, ReleaseRequest } from "../types.ts";
import { RedisRouterState } from "./redis-router-state.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const BREAKER: BreakerPolicy = {
  failureThreshold: 3,
  windowMs: 10_000,
  openMs: 5_000,
  halfOpenProbes: 1,
  keyRetryMs: 600_000,
};
const TARGET = { provider: "openai", model: "gpt-4o-mini" };
/** The admission margin the states here run with, so the expected waits read plainly. */
const MARGIN = 2_000;
/** Noon UTC, so a day boundary is only crossed where a test means to. */
const START = Date.parse("2026-11-22T12:00:00.000Z");

type KeySpec = AcquireRequest["keys"][number];

function key(id: string, limits: KeyLimits = {}, priority = 1): KeySpec {
  return { id, priority, limits };
}

describe("RedisRouterState", () => {
  let prefix: string;
  let clock: number;
  let connections: Redis[];
  let breaker: BreakerPolicy;

  beforeEach(() => {
    prefix = `test-router-state-${randomBytes(4).toString("hex")}`;
    clock = START;
    connections = [];
    breaker = BREAKER;
  });

  afterEach(async () => {
    const [first] = connections;
    if (first !== undefined) {
      const keys = await first.keys(`${prefix}:*`);
      if (keys.length > 0) await first.del(...keys);
    }
    for (const connection of connections) connection.disconnect();
  });

  /** A state on a connection of its own, as another worker process would have. */
  function worker(options: { serverClock?: boolean } = {}): RedisRouterState {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    connections.push(redis);
    return new RedisRouterState({
      redis,
      prefix,
      breaker: () => breaker,
      rateWindowMarginMs: MARGIN,
      ...(options.serverClock ? {} : { now: () => clock }),
    });
  }

  function request(keys: KeySpec[], overrides: Partial<AcquireRequest> = {}): AcquireRequest {
    return { ...TARGET, keys, tokens: 10, callId: randomUUID(), leaseMs: 30_000, ...overrides };
  }

  /** Acquires and returns what a release of the same call needs. */
  async function acquire(
    state: RedisRouterState,
    keys: KeySpec[],
    overrides: Partial<AcquireRequest> = {},
  ): Promise<{ result: AcquireResult; release: (fields?: Partial<ReleaseRequest>) => Promise<void> }> {
    const acquireRequest = request(keys, overrides);
    const result = await state.acquire(acquireRequest);
    return {
      result,
      release: (fields = {}) =>
        state.release({
          provider: acquireRequest.provider,
          model: acquireRequest.model,
          keyId: result.ok ? result.keyId : "",
          callId: acquireRequest.callId,
          probe: result.ok ? result.probe : false,
          latencyMs: 100,
          reservedTokens: acquireRequest.tokens,
          usedTokens: acquireRequest.tokens,
          countsAsFailure: false,
          ...fields,
        }),
    };
  }

  async function keyIds(state: RedisRouterState, keys: KeySpec[], count: number): Promise<string[]> {
    const chosen: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const { result } = await acquire(state, keys);
      chosen.push(result.ok ? result.keyId : result.reason);
    }
    return chosen;
  }

  const SERVER_ERROR = { code: "provider_unavailable", message: "503 from upstream" };

  async function fail(state: RedisRouterState, times: number): Promise<void> {
    for (let index = 0; index < times; index += 1) {
      const { result, release } = await acquire(state, [key("a")]);
      expect(result.ok).toBe(true);
      await release({ usedTokens: 0, error: SERVER_ERROR, countsAsFailure: true });
    }
  }

  describe("rate limits", () => {
    it("admits rpm calls per rolling minute and names the wait until the oldest call leaves the window", async () => {
      const state = worker();
      const keys = [key("a", { rpm: 5 })];
      for (let index = 0; index < 5; index += 1) {
        clock += 1_000;
        expect((await acquire(state, keys)).result).toEqual({ ok: true, keyId: "a", probe: false });
      }
      const limited = (await acquire(state, keys)).result;
      expect(limited).toEqual({ ok: false, reason: "rate_limited", retryAfterMs: 56_000 + MARGIN });

      clock = START + 1_000 + 60_000 + MARGIN - 1;
      expect((await acquire(state, keys)).result.ok).toBe(false);
      clock += 1;
      expect((await acquire(state, keys)).result.ok).toBe(true);
      expect((await acquire(state, keys)).result).toEqual({
        ok: false,
        reason: "rate_limited",
        retryAfterMs: 1_000,
      });
    });

    it("never lets a sliding 60 s window hold more than rpm admissions, even for callers that come back exactly when told", async () => {
      const first = worker();
      const second = worker();
      const rpm = 4;
      const keys = [key("a", { rpm })];
      const admitted: number[] = [];
      // Two processes take turns; each comes back exactly at the retryAfterMs it was given
      // (the window's edge), or a few hundred ms later after a success.
      for (let step = 0; admitted.length < 6 * rpm; step += 1) {
        const result = await (step % 2 === 0 ? first : second).acquire(request(keys));
        if (result.ok) {
          admitted.push(clock);
          clock += (step * 137) % 900;
        } else {
          expect(result.reason).toBe("rate_limited");
          clock += result.retryAfterMs ?? 1;
        }
      }
      for (const start of admitted) {
        // A provider counting arrivals in any closed 60-second span, [start, start + 60 s].
        const inWindow = admitted.filter((time) => time >= start && time <= start + 60_000);
        expect(inWindow.length, `admissions in the 60 s from ${start - START} ms`).toBeLessThanOrEqual(rpm);
      }
      // The margin is all the slack there is: each rpm-th next admission comes 60 s plus the margin later.
      expect(admitted[rpm]! - admitted[0]!).toBe(60_000 + MARGIN);
    });

    it("admits again once the clock has moved a full minute and the margin past a burst", async () => {
      const state = worker();
      const keys = [key("a", { rpm: 5 })];
      for (let index = 0; index < 5; index += 1) expect((await acquire(state, keys)).result.ok).toBe(true);
      const limited = (await acquire(state, keys)).result;
      expect(limited.ok).toBe(false);
      if (limited.ok) return;
      expect(limited.reason).toBe("rate_limited");
      expect(limited.retryAfterMs).toBeGreaterThan(0);
      expect(limited.retryAfterMs).toBeLessThanOrEqual(60_000 + MARGIN);
      clock += 60_000;
      expect((await acquire(state, keys)).result.ok).toBe(false);
      clock += MARGIN;
      expect((await acquire(state, keys)).result.ok).toBe(true);
    });

    it("shares the RPM limit between processes on separate connections", async () => {
      const first = worker();
      const second = worker();
      const keys = [key("a", { rpm: 5 })];
      for (let index = 0; index < 3; index += 1) expect((await acquire(first, keys)).result.ok).toBe(true);
      for (let index = 0; index < 2; index += 1) expect((await acquire(second, keys)).result.ok).toBe(true);
      expect((await acquire(first, keys)).result).toMatchObject({ ok: false, reason: "rate_limited" });
      expect((await acquire(second, keys)).result).toMatchObject({ ok: false, reason: "rate_limited" });
      const [stats] = await second.keyStats([{ provider: "openai", keyId: "a", limits: { rpm: 5 } }]);
      expect(stats?.requestsLastMinute).toBe(5);
    });

    it("admits exactly rpm of 50 concurrent acquires from two processes on Redis server time", async () => {
      const first = worker({ serverClock: true });
      const second = worker({ serverClock: true });
      const keys = [key("a", { rpm: 10 })];
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, index) => (index % 2 === 0 ? first : second).acquire(request(keys))),
      );
      expect(results.filter((result) => result.ok)).toHaveLength(10);
      const refused = results.filter((result) => !result.ok);
      expect(refused).toHaveLength(40);
      for (const result of refused) {
        expect(result).toMatchObject({ ok: false, reason: "rate_limited" });
        if (!result.ok) expect(result.retryAfterMs).toBeGreaterThan(59_000);
      }
    });

    it("limits tokens per minute and corrects a reservation to the tokens used on release", async () => {
      const state = worker();
      const keys = [key("a", { tpm: 1_000 })];
      const big = await acquire(state, keys, { tokens: 600 });
      expect(big.result.ok).toBe(true);
      clock += 10_000;
      expect((await acquire(state, keys, { tokens: 600 })).result).toEqual({
        ok: false,
        reason: "rate_limited",
        retryAfterMs: 50_000 + MARGIN,
      });

      await big.release({ usedTokens: 200 });
      expect((await acquire(state, keys, { tokens: 600 })).result.ok).toBe(true);
      const [stats] = await state.keyStats([{ provider: "openai", keyId: "a", limits: { tpm: 1_000 } }]);
      expect(stats).toMatchObject({ tokensLastMinute: 800, requestsLastMinute: 2 });

      // A minute (and the margin) after the first call only its corrected 200 tokens leave the window: 600 stay.
      clock = START + 60_000 + MARGIN;
      expect((await acquire(state, keys, { tokens: 401 })).result.ok).toBe(false);
      expect((await acquire(state, keys, { tokens: 400 })).result.ok).toBe(true);
    });

    it("raises the window when a call used more tokens than it reserved", async () => {
      const state = worker();
      const keys = [key("a", { tpm: 1_000 })];
      const call = await acquire(state, keys, { tokens: 100 });
      await call.release({ usedTokens: 950 });
      expect((await acquire(state, keys, { tokens: 100 })).result).toMatchObject({
        ok: false,
        reason: "rate_limited",
      });
    });

    it("keeps the TPM reservation of a failed call that reports no usage", async () => {
      const state = worker();
      const keys = [key("a", { tpm: 1_000 })];
      const call = await acquire(state, keys, { tokens: 600 });
      await call.release({ usedTokens: 0, error: SERVER_ERROR, countsAsFailure: true });
      expect((await acquire(state, keys, { tokens: 600 })).result).toMatchObject({
        ok: false,
        reason: "rate_limited",
      });
    });

    it("admits a call larger than the TPM limit only into an empty window", async () => {
      const state = worker();
      const keys = [key("a", { tpm: 100 })];
      expect((await acquire(state, keys, { tokens: 500 })).result.ok).toBe(true);
      expect((await acquire(state, keys, { tokens: 10 })).result).toEqual({
        ok: false,
        reason: "rate_limited",
        retryAfterMs: 60_000 + MARGIN,
      });
      clock += 60_000 + MARGIN;
      expect((await acquire(state, keys, { tokens: 10 })).result.ok).toBe(true);
      expect((await acquire(state, keys, { tokens: 500 })).result.ok).toBe(false);
    });

    it("counts requests per UTC day and refuses past RPD until the next day", async () => {
      const state = worker();
      clock = Date.parse("2026-11-22T23:59:00.000Z");
      const keys = [key("a", { rpd: 2 })];
      expect((await keyIds(state, keys, 3)).join()).toBe("a,a,rate_limited");
      expect((await acquire(state, keys)).result).toEqual({
        ok: false,
        reason: "rate_limited",
        retryAfterMs: 60_000,
      });
      const limits = { rpd: 2 };
      expect((await state.keyStats([{ provider: "openai", keyId: "a", limits }]))[0]?.requestsToday).toBe(2);

      clock += 60_000;
      expect((await acquire(state, keys)).result.ok).toBe(true);
      expect((await state.keyStats([{ provider: "openai", keyId: "a", limits }]))[0]?.requestsToday).toBe(1);
    });
  });

  describe("key rotation", () => {
    it("uses the highest-priority key first and the next priority when it has no headroom", async () => {
      const state = worker();
      const keys = [key("backup", {}, 2), key("main", { rpm: 2 }, 1)];
      expect(await keyIds(state, keys, 4)).toEqual(["main", "main", "backup", "backup"]);
    });

    it("spreads calls over the least used key of the best priority group, ties in given order", async () => {
      const state = worker();
      const keys = [key("a"), key("b"), key("spare", {}, 2)];
      expect(await keyIds(state, keys, 5)).toEqual(["a", "b", "a", "b", "a"]);
    });

    it("skips a cooling key until its cooldown ends", async () => {
      const state = worker();
      const keys = [key("main", {}, 1), key("backup", {}, 2)];
      const call = await acquire(state, keys);
      await call.release({
        usedTokens: 0,
        error: { code: "rate_limited", message: "429" },
        keyAction: { kind: "cooldown", cooldownMs: 30_000 },
      });
      expect(await keyIds(state, keys, 1)).toEqual(["backup"]);
      const [stats] = await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]);
      expect(stats).toMatchObject({ state: "cooling", until: START + 30_000 });

      clock += 30_000;
      expect(await keyIds(state, keys, 1)).toEqual(["main"]);
      expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
        "ok",
      );
    });

    it("skips an exhausted key until resetKey puts it back", async () => {
      const first = worker();
      const second = worker();
      const keys = [key("main", {}, 1), key("backup", {}, 2)];
      const call = await acquire(first, keys);
      await call.release({
        usedTokens: 0,
        error: { code: "credit_exhausted", message: "insufficient_quota" },
        keyAction: { kind: "exhausted", reason: "credit_exhausted: insufficient_quota" },
      });
      clock += BREAKER.keyRetryMs - 1;
      expect(await keyIds(second, keys, 2)).toEqual(["backup", "backup"]);
      const [stats] = await second.keyStats([{ provider: "openai", keyId: "main", limits: {} }]);
      expect(stats).toMatchObject({
        state: "exhausted",
        reason: "credit_exhausted: insufficient_quota",
        until: START + BREAKER.keyRetryMs,
      });

      await second.resetKey("openai", "main");
      expect(await keyIds(first, keys, 1)).toEqual(["main"]);
      expect((await first.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
        "ok",
      );
    });

    describe("after an exhausted key's retry time", () => {
      const keys = [key("main", {}, 1), key("backup", {}, 1)];

      async function exhaustMain(state: RedisRouterState): Promise<void> {
        const call = await acquire(state, [key("main")]);
        await call.release({
          usedTokens: 0,
          error: { code: "auth_failed", message: "401 invalid_api_key" },
          keyAction: { kind: "exhausted", reason: "auth_failed: 401 invalid_api_key" },
        });
      }

      it("lets exactly one call probe the key, and puts it back when the probe succeeds", async () => {
        const first = worker();
        const second = worker();
        await exhaustMain(first);
        clock += BREAKER.keyRetryMs;
        const probe = await acquire(first, keys);
        expect(probe.result).toEqual({ ok: true, keyId: "main", probe: false });
        // While the probe runs, every other process keeps off the key.
        expect(await keyIds(second, keys, 3)).toEqual(["backup", "backup", "backup"]);
        expect((await second.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]).toMatchObject(
          {
            state: "exhausted",
            reason: "auth_failed: 401 invalid_api_key",
          },
        );

        await probe.release();
        expect((await second.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
          "ok",
        );
        expect(await keyIds(second, keys, 2)).toEqual(["main", "main"]);
      });

      it("re-arms the retry time when the probe fails on the key again", async () => {
        const state = worker();
        await exhaustMain(state);
        clock += BREAKER.keyRetryMs;
        const probe = await acquire(state, keys);
        expect(probe.result).toMatchObject({ ok: true, keyId: "main" });
        clock += 500;
        await probe.release({
          usedTokens: 0,
          error: { code: "auth_failed", message: "401 invalid_api_key" },
          keyAction: { kind: "exhausted", reason: "auth_failed: 401 again" },
        });
        expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]).toMatchObject({
          state: "exhausted",
          until: clock + BREAKER.keyRetryMs,
          reason: "auth_failed: 401 again",
        });
        clock += BREAKER.keyRetryMs - 1;
        expect(await keyIds(state, keys, 2)).toEqual(["backup", "backup"]);
        clock += 1;
        expect(await keyIds(state, keys, 1)).toEqual(["main"]);
      });

      it("lets the next call probe when the probe ends with an error that says nothing about the key", async () => {
        const state = worker();
        await exhaustMain(state);
        clock += BREAKER.keyRetryMs;
        const probe = await acquire(state, keys);
        expect(probe.result).toMatchObject({ ok: true, keyId: "main" });
        await probe.release({ usedTokens: 0, error: SERVER_ERROR, countsAsFailure: true });
        const next = await acquire(state, keys);
        expect(next.result).toMatchObject({ ok: true, keyId: "main" });
        // Still on probation: a concurrent call keeps off it.
        expect(await keyIds(state, keys, 1)).toEqual(["backup"]);
        await next.release();
        expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
          "ok",
        );
      });

      it("lets another call probe once a dead worker's probe lease ends", async () => {
        const state = worker();
        await exhaustMain(state);
        clock += BREAKER.keyRetryMs;
        expect((await acquire(state, keys, { leaseMs: 2_000 })).result).toMatchObject({ keyId: "main" });
        clock += 1_999;
        expect(await keyIds(state, keys, 1)).toEqual(["backup"]);
        clock += 1;
        expect(await keyIds(state, keys, 1)).toEqual(["main"]);
      });

      it("does not restore the key on the success of a call admitted before it was exhausted", async () => {
        const state = worker();
        const early = await acquire(state, [key("main")]);
        await exhaustMain(state);
        await early.release();
        expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
          "exhausted",
        );
      });

      it("treats a key exhausted by an older release (no retry time) as due for a probe", async () => {
        const state = worker();
        const redis = connections[0]!;
        await redis.set(`${prefix}:router:{openai}:key:main:block`, "exhausted:auth_failed: old");
        expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]).toMatchObject({
          state: "exhausted",
          reason: "auth_failed: old",
        });
        const probe = await acquire(state, keys);
        expect(probe.result).toMatchObject({ ok: true, keyId: "main" });
        await probe.release();
        expect((await state.keyStats([{ provider: "openai", keyId: "main", limits: {} }]))[0]?.state).toBe(
          "ok",
        );
      });
    });

    it("does not let a cooldown lift an exhausted key", async () => {
      const state = worker();
      const keys = [key("main")];
      const exhausting = await acquire(state, keys);
      const cooling = await acquire(state, keys);
      await exhausting.release({
        usedTokens: 0,
        error: { code: "auth_failed", message: "401" },
        keyAction: { kind: "exhausted", reason: "auth_failed" },
      });
      await cooling.release({
        usedTokens: 0,
        error: { code: "rate_limited", message: "429" },
        keyAction: { kind: "cooldown", cooldownMs: 1_000 },
      });
      clock += 2_000;
      expect((await acquire(state, keys)).result).toEqual({ ok: false, reason: "no_key" });
    });

    it("answers no_key with the soonest cooldown end when every key is cooling or exhausted", async () => {
      const state = worker();
      const keys = [key("a"), key("b"), key("c")];
      const [a, b, c] = [await acquire(state, keys), await acquire(state, keys), await acquire(state, keys)];
      await a?.release({ usedTokens: 0, keyAction: { kind: "cooldown", cooldownMs: 20_000 } });
      await b?.release({ usedTokens: 0, keyAction: { kind: "cooldown", cooldownMs: 5_000 } });
      await c?.release({ usedTokens: 0, keyAction: { kind: "exhausted", reason: "auth_failed" } });
      expect((await acquire(state, keys)).result).toEqual({
        ok: false,
        reason: "no_key",
        retryAfterMs: 5_000,
      });
    });

    it("answers no_key without a wait when every key is exhausted", async () => {
      const state = worker();
      const call = await acquire(state, [key("a")]);
      await call.release({ usedTokens: 0, keyAction: { kind: "exhausted", reason: "auth_failed" } });
      expect((await acquire(state, [key("a")])).result).toEqual({ ok: false, reason: "no_key" });
    });

    it("answers rate_limited with the soonest opening when usable keys lack headroom", async () => {
      const state = worker();
      const keys = [key("a", { rpm: 1 }), key("b", { rpm: 1 })];
      expect(await keyIds(state, keys, 1)).toEqual(["a"]);
      clock += 10_000;
      expect(await keyIds(state, keys, 1)).toEqual(["b"]);
      expect((await acquire(state, keys)).result).toEqual({
        ok: false,
        reason: "rate_limited",
        retryAfterMs: 50_000 + MARGIN,
      });
    });

    it("counts the usage of keys without limits", async () => {
      const state = worker();
      await keyIds(state, [key("free")], 3);
      const [stats] = await state.keyStats([{ provider: "openai", keyId: "free", limits: {} }]);
      expect(stats).toEqual({
        provider: "openai",
        keyId: "free",
        state: "ok",
        requestsLastMinute: 3,
        tokensLastMinute: 30,
        requestsToday: 3,
      });
      clock += 60_000;
      const [later] = await state.keyStats([{ provider: "openai", keyId: "free", limits: {} }]);
      expect(later).toMatchObject({ requestsLastMinute: 0, tokensLastMinute: 0, requestsToday: 3 });
    });
  });

  describe("circuit breaker", () => {
    it("opens after the threshold of counted failures within the window, for every process", async () => {
      const first = worker();
      const second = worker();
      await fail(first, 3);
      expect((await acquire(second, [key("a")])).result).toEqual({
        ok: false,
        reason: "circuit_open",
        retryAfterMs: 5_000,
      });
      const [stats] = await second.targetStats([TARGET]);
      expect(stats).toMatchObject({ circuit: "open", circuitOpenUntil: START + 5_000 });
    });

    it("does not count failures that left the window", async () => {
      const state = worker();
      await fail(state, 2);
      clock += BREAKER.windowMs + 1;
      await fail(state, 2);
      expect((await acquire(state, [key("a")])).result.ok).toBe(true);
      expect((await state.targetStats([TARGET]))[0]?.circuit).toBe("closed");
    });

    it("leaves the circuit closed on errors that are not provider failures", async () => {
      const state = worker();
      for (let index = 0; index < 5; index += 1) {
        const call = await acquire(state, [key("a")]);
        await call.release({
          usedTokens: 0,
          error: { code: "invalid_request", message: "bad" },
          countsAsFailure: false,
        });
      }
      expect((await acquire(state, [key("a")])).result.ok).toBe(true);
    });

    it("half-opens after openMs and lets only halfOpenProbes probes through at once", async () => {
      breaker = { ...BREAKER, halfOpenProbes: 2 };
      const first = worker();
      const second = worker();
      await fail(first, 3);
      clock += 4_999;
      expect((await acquire(first, [key("a")])).result).toEqual({
        ok: false,
        reason: "circuit_open",
        retryAfterMs: 1,
      });
      clock += 1;
      expect((await second.targetStats([TARGET]))[0]?.circuit).toBe("half-open");
      expect((await acquire(first, [key("a")])).result).toEqual({ ok: true, keyId: "a", probe: true });
      expect((await acquire(second, [key("a")])).result).toEqual({ ok: true, keyId: "a", probe: true });
      const third = (await acquire(second, [key("a")])).result;
      expect(third).toMatchObject({ ok: false, reason: "circuit_open" });
      if (!third.ok) {
        expect(third.retryAfterMs).toBeGreaterThan(0);
        expect(third.retryAfterMs).toBeLessThanOrEqual(500);
      }
    });

    it("frees the probe slot of a probe whose worker died once its lease ends", async () => {
      const state = worker();
      await fail(state, 3);
      clock += BREAKER.openMs;
      expect((await acquire(state, [key("a")], { leaseMs: 2_000 })).result).toMatchObject({ probe: true });
      expect((await acquire(state, [key("a")])).result).toMatchObject({ ok: false, reason: "circuit_open" });
      clock += 2_000;
      expect((await acquire(state, [key("a")])).result).toMatchObject({ ok: true, probe: true });
    });

    it("closes when a probe succeeds and forgets the failures that opened it", async () => {
      const state = worker();
      await fail(state, 3);
      clock += BREAKER.openMs;
      const probe = await acquire(state, [key("a")]);
      expect(probe.result).toMatchObject({ ok: true, probe: true });
      await probe.release();
      expect((await state.targetStats([TARGET]))[0]?.circuit).toBe("closed");
      expect((await acquire(state, [key("a")])).result).toEqual({ ok: true, keyId: "a", probe: false });
      await fail(state, 2);
      expect((await acquire(state, [key("a")])).result.ok).toBe(true);
    });

    it("re-opens when a probe fails", async () => {
      const state = worker();
      await fail(state, 3);
      clock += BREAKER.openMs;
      const probe = await acquire(state, [key("a")]);
      clock += 100;
      await probe.release({ usedTokens: 0, error: SERVER_ERROR, countsAsFailure: true });
      expect((await acquire(state, [key("a")])).result).toEqual({
        ok: false,
        reason: "circuit_open",
        retryAfterMs: BREAKER.openMs,
      });
      expect((await state.targetStats([TARGET]))[0]).toMatchObject({
        circuit: "open",
        circuitOpenUntil: clock + BREAKER.openMs,
      });
    });

    it("keeps a half-open circuit half-open when a probe ends with an error that is not a provider failure", async () => {
      const state = worker();
      await fail(state, 3);
      clock += BREAKER.openMs;
      const probe = await acquire(state, [key("a")]);
      await probe.release({ usedTokens: 0, error: { code: "invalid_request", message: "bad" } });
      expect((await state.targetStats([TARGET]))[0]?.circuit).toBe("half-open");
      expect((await acquire(state, [key("a")])).result).toMatchObject({ ok: true, probe: true });
    });
  });

  describe("figures", () => {
    it("counts calls in flight across processes until they are released", async () => {
      const first = worker();
      const second = worker();
      const one = await acquire(first, [key("a")]);
      await acquire(second, [key("a")]);
      expect((await first.targetStats([TARGET]))[0]?.inFlight).toBe(2);
      await one.release();
      expect((await second.targetStats([TARGET]))[0]?.inFlight).toBe(1);
    });

    it("stops counting a never-released call once its lease ends", async () => {
      const state = worker();
      await acquire(state, [key("a")], { leaseMs: 1_000 });
      clock += 999;
      expect((await state.targetStats([TARGET]))[0]?.inFlight).toBe(1);
      clock += 1;
      expect((await state.targetStats([TARGET]))[0]?.inFlight).toBe(0);
    });

    it("reports p50 and p95 of the last 100 successful latencies and their moving average", async () => {
      const state = worker();
      const latencies = Array.from({ length: 110 }, (_, index) => index + 1);
      let ewma: number | undefined;
      for (const latencyMs of latencies) {
        const call = await acquire(state, [key("a")]);
        await call.release({ latencyMs });
        ewma = ewma === undefined ? latencyMs : 0.2 * latencyMs + 0.8 * ewma;
      }
      const failed = await acquire(state, [key("a")]);
      await failed.release({ latencyMs: 99_999, usedTokens: 0, error: SERVER_ERROR, countsAsFailure: true });

      const [stats] = await state.targetStats([TARGET]);
      // The samples are 11..110 (the first ten fell out); the failure is not a sample.
      expect(stats?.p50LatencyMs).toBe(60);
      expect(stats?.p95LatencyMs).toBe(105);
      expect(stats?.ewmaLatencyMs).toBeCloseTo(ewma ?? 0, 6);
    });

    it("reports no latency figures before the first successful call", async () => {
      const state = worker();
      const [stats] = await state.targetStats([TARGET, { provider: "anthropic", model: "claude" }]);
      expect(stats).toEqual({ ...TARGET, circuit: "closed", inFlight: 0, calls: 0, errors: 0 });
    });

    it("keeps the last error with its message cut to 300 characters and counts recent calls and errors", async () => {
      const state = worker();
      await (await acquire(state, [key("a")])).release();
      await (await acquire(state, [key("a")])).release();
      clock += 61_000;
      const failed = await acquire(state, [key("a")]);
      await failed.release({
        usedTokens: 0,
        error: { code: "timeout", message: "x".repeat(500) },
        countsAsFailure: true,
      });

      const [stats] = await state.targetStats([TARGET]);
      expect(stats).toMatchObject({ calls: 3, errors: 1 });
      expect(stats?.lastError).toEqual({
        code: "timeout",
        message: "x".repeat(300),
        at: new Date(clock).toISOString(),
      });

      clock += 5 * 60_000;
      expect((await state.targetStats([TARGET]))[0]).toMatchObject({
        calls: 0,
        errors: 0,
        lastError: { code: "timeout" },
      });
    });
  });
});
