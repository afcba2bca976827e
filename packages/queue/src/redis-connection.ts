import { redactUrl } from "@genq/core";
import { Redis } from "ioredis";

/**
 * How a connection is used. BullMQ workers block on Redis and must retry
 * forever; producers on a request path must fail fast so the API can answer 503
 * instead of hanging while Redis is down.
 */
export type RedisRole = "producer" | "worker" | "subscriber";

/** Options for {@link createRedisConnection}. */
export interface RedisConnectionOptions {
  url: string;
  role: RedisRole;
  /** Shown in `CLIENT LIST`, handy when operating. */
  connectionName?: string;
}

/** Creates an ioredis connection configured for its role. */
export function createRedisConnection(options: RedisConnectionOptions): Redis {
  const failFast = options.role === "producer";
  return new Redis(options.url, {
    ...(options.connectionName === undefined ? {} : { connectionName: options.connectionName }),
    // BullMQ requires `null` for blocking connections; producers give up after one retry.
    maxRetriesPerRequest: failFast ? 1 : null,
    enableOfflineQueue: !failFast,
    connectTimeout: 5_000,
    // Reconnect forever with a capped delay: Redis restarts are expected operations.
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    lazyConnect: false,
  });
}

/**
 * Fails with an actionable message when Redis cannot be reached at `url`.
 * Used at start-up so a missing Redis is reported in one line, not a stack trace.
 */
export async function assertRedisReachable(url: string, timeoutMs = 3_000): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot reach Redis at ${redactUrl(url)} (${reason}). Start one with \`docker compose up -d redis\` or set REDIS_URL.`,
    );
  } finally {
    redis.disconnect();
  }
}
