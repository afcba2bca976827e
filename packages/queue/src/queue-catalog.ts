import type { JobType } from "@genq/core";

/** How a queue's jobs are retried and kept. */
export interface QueueDefinition {
  /** The BullMQ queue name. */
  name: string;
  /** Total attempts, the first included. */
  attempts: number;
  /** First retry delay; each later one doubles (with jitter). */
  backoffMs: number;
  /** Per-attempt deadline for the provider call. */
  attemptTimeoutMs: number;
}

/** The queues genq runs, by job type. Postgres keeps history, so Redis keeps little. */
export const QUEUE_CATALOG: Record<JobType, QueueDefinition> = {
  text: { name: "text", attempts: 3, backoffMs: 1_000, attemptTimeoutMs: 120_000 },
  image: { name: "image", attempts: 3, backoffMs: 2_000, attemptTimeoutMs: 300_000 },
};

/** Every queue name a worker can be told to run. */
export const QUEUE_NAMES = Object.values(QUEUE_CATALOG).map((definition) => definition.name);

/** The default Redis key prefix of genq's queues. */
export const DEFAULT_QUEUE_PREFIX = "genq";

/** The pub/sub channel that carries cancel requests for active jobs to workers. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

/**
 * The pub/sub channel on which revoked API keys and changed users are announced,
 * so every API process drops them from its key cache. Messages are JSON
 * `{apiKeyId?, userId?}`; an empty object evicts everything.
 */
export function apiKeyInvalidationChannel(prefix: string): string {
  return `${prefix}:api-keys:invalidate`;
}
