import type { BatchRepository, EconomyRepository } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import type { ProviderRouter } from "@genq/providers";
import type { JobQueues } from "@genq/queue";
import type { QuotaLedger } from "@genq/quota";
import type { Logger } from "pino";
import type { JobTransitions } from "./job-transitions.ts";

/**
 * What happens to the items of a provider batch that expired or failed before
 * running them: `online` runs them through the queues at online prices, `fail`
 * fails them (`timeout` for an expiry, `provider_unavailable` for a refused batch).
 */
export type EconomyFallback = "online" | "fail";

/** Options for {@link EconomyScheduler}. */
export interface EconomySchedulerOptions {
  economy: EconomyRepository;
  batches: Pick<BatchRepository, "claimItems">;
  lifecycle: Pick<JobTransitions, "claim" | "complete" | "fail" | "cancelIfRequested">;
  router: Pick<ProviderRouter, "config">;
  queues: Pick<JobQueues, "enqueueBulk" | "holdLease" | "releaseLease">;
  logger: Logger;
  /** Reserves each item's worst case at submission; without it items are not metered. */
  quota?: Pick<QuotaLedger, "reserve"> | undefined;
  /** @defaultValue "online" */
  fallback?: EconomyFallback | undefined;
  /** How often the scheduler looks for work (a cheap indexed query). @defaultValue 5000 */
  intervalMs?: number | undefined;
  /** The first poll of a provider batch comes this long after its submission. @defaultValue 30000 */
  firstPollMs?: number | undefined;
  /** Poll backoff: the n-th poll waits `pollBaseMs × 2^n`, at most `pollMaxMs`. @defaultValue 30000 */
  pollBaseMs?: number | undefined;
  /** @defaultValue 600000 (10 minutes) */
  pollMaxMs?: number | undefined;
  /** How long one poller holds a provider batch (its lease); a poll must end within it. @defaultValue 300000 */
  leaseMs?: number | undefined;
  /** Items taken from one genq batch per pass. @defaultValue 5000 */
  submitChunk?: number | undefined;
  /** Provider batch outcomes, and the tokens and cost of the items they completed, for /metrics. */
  metrics?:
    | Pick<GenqMetrics, "providerBatches" | "providerBatchItems" | "providerTokens" | "providerCost">
    | undefined;
}

/** {@link EconomySchedulerOptions} with every default applied. */
export type ResolvedEconomyOptions = Required<Omit<EconomySchedulerOptions, "quota" | "metrics">> &
  Pick<EconomySchedulerOptions, "quota" | "metrics">;

/** Applies the defaults documented on {@link EconomySchedulerOptions}, and checks the numbers. */
export function resolveEconomyOptions(options: EconomySchedulerOptions): ResolvedEconomyOptions {
  const resolved = {
    fallback: "online" as const,
    intervalMs: 5_000,
    firstPollMs: 30_000,
    pollBaseMs: 30_000,
    pollMaxMs: 600_000,
    leaseMs: 300_000,
    submitChunk: 5_000,
    ...withoutUndefined(options),
  };
  for (const field of ["intervalMs", "pollBaseMs", "pollMaxMs", "leaseMs", "submitChunk"] as const) {
    if (!(Number.isFinite(resolved[field]) && resolved[field] > 0))
      throw new RangeError(`${field} must be a positive number`);
  }
  return resolved;
}

function withoutUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
