import { randomBytes } from "node:crypto";
import { createPriceCatalog, ProviderRouter, RedisRouterState, type RouterConfig } from "@genq/providers";
import { createOpenAIProvider } from "@genq/providers/openai";
import { startFakeOpenAIServer } from "@genq/providers/testing";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { percentile, round } from "./stats.ts";

/** The router-overhead figures of one run, in milliseconds. */
export interface RouterOverheadResult {
  name: "router-overhead";
  calls: number;
  direct: { p50: number; p99: number };
  routed: { p50: number; p99: number };
  overhead: { p50: number; p99: number };
  goal: { p50: number; p99: number };
}

const MESSAGES = [{ role: "user" as const, content: "benchmark" }];

/**
 * P3: a call through the router (strategy, key rotation with RPM/TPM limits and
 * the circuit check in Redis, release with latency figures, cost) minus a direct
 * `openai` SDK call to the same zero-latency fake server. Calls alternate so both
 * see the same machine state; the baseline is measured in the same run.
 */
export async function benchRouterOverhead(options: {
  redisUrl: string;
  calls: number;
}): Promise<RouterOverheadResult> {
  const server = await startFakeOpenAIServer();
  const redis = new Redis(options.redisUrl);
  const prefix = `bench-router-${randomBytes(4).toString("hex")}`;
  try {
    const direct = new OpenAI({ apiKey: "sk-bench", baseURL: server.url, maxRetries: 0 });
    const client = createOpenAIProvider({ name: "openai", apiKey: "sk-bench", baseURL: server.url });
    const config: RouterConfig = {
      version: "bench",
      priceVersion: "bench",
      providers: new Map([
        [
          "openai",
          {
            name: "openai",
            type: "openai",
            acceptsUserKeys: false,
            keys: [
              // Limits far above the load, so every call runs the limit script without being refused.
              { id: "a", priority: 1, limits: { rpm: 10_000_000, tpm: 1_000_000_000 }, client, hint: "…" },
              { id: "b", priority: 1, limits: { rpm: 10_000_000, tpm: 1_000_000_000 }, client, hint: "…" },
            ],
            models: new Map([
              ["gpt-4o-mini", { id: "gpt-4o-mini", capabilities: ["text"], zeroCost: false }],
            ]),
            defaultModel: "gpt-4o-mini",
          },
        ],
      ]),
      routes: new Map([
        [
          "default",
          {
            name: "default",
            strategy: "priority",
            targets: [{ provider: "openai", model: "gpt-4o-mini", weight: 1, tier: 0 }],
          },
        ],
      ]),
      defaultRoute: "default",
      retry: {
        maxCalls: 3,
        perTargetAttempts: 2,
        baseDelayMs: 100,
        maxDelayMs: 1_000,
        maxInlineWaitMs: 1_000,
        callTimeoutMs: 10_000,
        deadlineMs: 30_000,
      },
      breaker: {
        failureThreshold: 5,
        windowMs: 60_000,
        openMs: 30_000,
        halfOpenProbes: 1,
        keyRetryMs: 600_000,
      },
      prices: createPriceCatalog(
        [
          {
            provider: "openai",
            model: "gpt-4o-mini",
            inputPerMillionMicroUsd: 150_000,
            outputPerMillionMicroUsd: 600_000,
          },
        ],
        { includeDefaults: false },
      ),
    };
    const router = new ProviderRouter({
      config: () => config,
      state: new RedisRouterState({ redis, prefix, breaker: () => config.breaker }),
    });

    const callDirect = () =>
      direct.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, max_tokens: 16 });
    const callRouted = () => router.generateText({}, { messages: MESSAGES, maxTokens: 16 });

    // Warm up connections, JIT and script caches.
    for (let index = 0; index < 200; index += 1) {
      await callDirect();
      await callRouted();
    }
    const directTimes: number[] = [];
    const routedTimes: number[] = [];
    for (let index = 0; index < options.calls; index += 1) {
      let started = performance.now();
      await callDirect();
      directTimes.push(performance.now() - started);
      started = performance.now();
      await callRouted();
      routedTimes.push(performance.now() - started);
    }
    const directP = { p50: percentile(directTimes, 50), p99: percentile(directTimes, 99) };
    const routedP = { p50: percentile(routedTimes, 50), p99: percentile(routedTimes, 99) };
    return {
      name: "router-overhead",
      calls: options.calls,
      direct: { p50: round(directP.p50), p99: round(directP.p99) },
      routed: { p50: round(routedP.p50), p99: round(routedP.p99) },
      overhead: { p50: round(routedP.p50 - directP.p50), p99: round(routedP.p99 - directP.p99) },
      goal: { p50: 0.5, p99: 2 },
    };
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await server.close();
  }
}
