import type { FailureCounter, ProviderRegistry } from "@genq/providers";
import {
  createAnthropicProvider,
  createGeminiProvider,
  createMockProvider,
  createProviderRegistry,
  type Provider,
} from "@genq/providers";
import { createOpenAIProvider } from "@genq/providers/openai";
import type { Redis } from "ioredis";
import type { WorkerEnv } from "./env.ts";

/**
 * A failure counter shared by every worker process, so the mock's `failTimes`
 * counts attempts of one job wherever they run.
 */
export function createRedisFailureCounter(redis: Redis, prefix: string): FailureCounter {
  return {
    async increment(key) {
      const redisKey = `${prefix}:mock-failures:${key}`;
      const [[, count]] = (await redis.multi().incr(redisKey).expire(redisKey, 3_600).exec()) as [
        [null, number],
      ];
      return count;
    },
  };
}

/** The providers this worker can call, from its environment. */
export function createProvidersFromEnv(env: WorkerEnv, redis: Redis): ProviderRegistry {
  const providers: Provider[] = [];
  // In production the mock would give free, fault-injectable completions to anyone who asks.
  if (env.GENQ_MOCK_ENABLED ?? env.NODE_ENV !== "production") {
    providers.push(
      createMockProvider({
        latencyMs: env.GENQ_MOCK_LATENCY_MS,
        failureRate: env.GENQ_MOCK_FAILURE_RATE,
        failureCounter: createRedisFailureCounter(redis, env.GENQ_QUEUE_PREFIX),
      }),
    );
  }
  if (env.OPENAI_API_KEY !== undefined) {
    providers.push(
      createOpenAIProvider({
        apiKey: env.OPENAI_API_KEY,
        defaultModel: env.OPENAI_DEFAULT_MODEL,
        ...(env.OPENAI_BASE_URL === undefined ? {} : { baseURL: env.OPENAI_BASE_URL }),
      }),
    );
  }
  if (env.ANTHROPIC_API_KEY !== undefined) {
    providers.push(
      createAnthropicProvider({
        apiKey: env.ANTHROPIC_API_KEY,
        defaultModel: env.ANTHROPIC_DEFAULT_MODEL,
        ...(env.ANTHROPIC_BASE_URL === undefined ? {} : { baseURL: env.ANTHROPIC_BASE_URL }),
      }),
    );
  }
  if (env.GEMINI_API_KEY !== undefined) {
    providers.push(
      createGeminiProvider({
        apiKey: env.GEMINI_API_KEY,
        defaultModel: env.GEMINI_DEFAULT_MODEL,
        ...(env.GEMINI_BASE_URL === undefined ? {} : { baseURL: env.GEMINI_BASE_URL }),
      }),
    );
  }
  return createProviderRegistry(providers, {
    defaultProvider: env.GENQ_DEFAULT_PROVIDER,
    defaultModels: {
      openai: env.OPENAI_DEFAULT_MODEL,
      anthropic: env.ANTHROPIC_DEFAULT_MODEL,
      gemini: env.GEMINI_DEFAULT_MODEL,
    },
  });
}
