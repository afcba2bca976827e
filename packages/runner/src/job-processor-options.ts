import type { StoredImage } from "@genq/core";
import type { EventPublisher } from "@genq/events";
import type { GenqMetrics } from "@genq/metrics";
import type { ProviderRouter, ResultCache } from "@genq/providers";
import type { QuotaLedger } from "@genq/quota";
import type { Logger } from "pino";
import type { JobTransitions } from "./job-transitions.ts";
import type { TenantGate } from "./tenant-gate.ts";

/** Where an image job's images go: object storage plus one asset row per image. */
export interface JobImageStore {
  storeJobImages(input: {
    jobId: string;
    userId: string;
    images: Array<{ bytes: Uint8Array; mediaType: string; revisedPrompt?: string }>;
  }): Promise<StoredImage[]>;
  /** The bytes of an upload (the source or mask of an edit or variation), by object key. */
  readUpload(key: string): Promise<Uint8Array>;
}

/** Dependencies of {@link createJobProcessor}. */
export interface JobProcessorOptions {
  /** The job lifecycle: claim, complete, retry, postpone, fail, cancel. */
  lifecycle: JobTransitions;
  router: ProviderRouter;
  logger: Logger;
  /**
   * The quota ledger: a job whose claim carries no hold from admission reserves its
   * worst case here before the provider call. The lifecycle settles the hold when
   * the job completes (the processor hands it the charge) and releases it in every
   * transition that finishes it otherwise. Without it, jobs are not metered.
   */
  quota?: Pick<QuotaLedger, "reserve">;
  /** Provider call figures (count, latency, tokens, cost) for /metrics. */
  metrics?: GenqMetrics;
  /**
   * Users' own provider keys: a job whose candidate provider has one runs on it
   * (usage and cost recorded; the system quota is not charged for it).
   */
  userKeys?: { openForJob(userId: string, provider: string): Promise<string | undefined> };
  /** Stores the images of image jobs; without it, image jobs fail with a clear error. */
  images?: JobImageStore;
  /** Per-attempt deadline for the provider call. */
  attemptTimeoutMs: number;
  /**
   * Live events (`GET /v1/jobs/:id/events`): `job.started`, `job.retrying`,
   * `job.delayed` and, for text jobs with `stream: true`, `job.delta`. Terminal
   * events come from the lifecycle's finished-job effects. Without it, nothing is
   * published and streamed text jobs run like the others.
   */
  events?: Pick<EventPublisher, "publishJobEvent">;
  /**
   * Results of deterministic text requests (`temperature: 0` or `cache: true`),
   * shared by all workers, scoped to the requesting user unless the cache is shared.
   * A hit completes the job without a provider call, at no cost and without a quota charge.
   */
  resultCache?: ResultCache;
  /**
   * Per-tenant in-flight caps: a job whose owner already runs its cap is parked
   * instead of claimed, and woken when one of the owner's jobs stops running.
   * Without it, a tenant may take every worker slot.
   */
  tenantGate?: TenantGate;
  /**
   * How long a job may keep waiting for its providers (every candidate rate limited
   * or behind an open circuit), from its first postponement; past it the job fails
   * `provider_unavailable` instead of waiting again.
   * @defaultValue 1800000 (30 minutes, {@link DEFAULT_POSTPONE_DEADLINE_MS})
   */
  postponeDeadlineMs?: number;
}

/** Default of {@link JobProcessorOptions.postponeDeadlineMs}. */
export const DEFAULT_POSTPONE_DEADLINE_MS = 30 * 60_000;
