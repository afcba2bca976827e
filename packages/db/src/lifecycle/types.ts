import type { TokenUsage } from "@genq/core";
import type { Job, Plan } from "../generated/prisma/client.ts";

/** A job row. */
export type JobRecord = Job;

/**
 * How a provider call ended. `skipped`: the target was not called at all (its
 * circuit was open, it was rate limited, or no key was available).
 */
export type ProviderCallOutcome = "ok" | "error" | "skipped";

/**
 * One provider call the router made (or skipped) during an attempt. An attempt
 * has one or more: retries and fallbacks to other providers or keys each add one.
 */
export interface ProviderCallRecord {
  /** The call's order within its attempt, from 1. */
  seq: number;
  provider: string;
  model: string;
  /** The configured id of the provider key used; never the secret. */
  keyId?: string | undefined;
  startedAt: Date;
  /** Stored rounded to whole milliseconds. */
  latencyMs: number;
  outcome: ProviderCallOutcome;
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
}

/** A stored provider call, with the attempt of the job it belongs to. */
export interface JobProviderCall extends ProviderCallRecord {
  /** The job's `attempts` after the claim that ran the call. */
  jobAttempt: number;
}

/** Why an attempt failed, as stored on the job (a GenqError fits). */
export interface JobFailure {
  code: string;
  message: string;
}

/** What a finished attempt produced. */
export interface JobCompletion {
  jobId: string;
  /** The claimed row's `attempts`. */
  attempt: number;
  result: unknown;
  provider: string;
  model: string;
  /** Token counts, and the images an image job generated (stored on the usage record; 0 when absent). */
  usage: TokenUsage & { images?: number | undefined };
  costMicroUsd: number;
  /** The price catalog version the cost was computed with. */
  priceVersion?: string | undefined;
  /** The configured id of the provider key that produced the result; never the secret. */
  keyId?: string | undefined;
  /** Every provider call of this attempt, including the failed and skipped ones. */
  calls?: readonly ProviderCallRecord[] | undefined;
  /**
   * What the job is charged against its quota hold, settled in the completing
   * statement (so exactly when it completes); "release" charges nothing (a user's
   * own key, a cached result). Absent (a process without a quota ledger): a hold, if
   * any, is left for the reclaimer, which settles it from the usage record.
   */
  charge?: QuotaCharge | undefined;
}

/** Limits a claim checks besides the job's own state; see {@link JobRepository.claimFor}. */
export interface ClaimLimits {
  /**
   * The most jobs one user on `plan` may have running (status `active`) at once, over
   * every worker; absent: no cap.
   */
  tenantCap?: ((plan: Plan) => number) | undefined;
}

/**
 * What {@link JobLifecycle.claim} did. `claimed`: the job is the caller's to run (`held`:
 * it holds a quota reservation, taken at admission or by an earlier attempt).
 * `finished`: gone, finished or canceled (nothing to do). `user_disabled`: its owner
 * is disabled, and the job was canceled. `tenant_busy`: its owner already has
 * `cap` jobs running; the job was left queued, untouched.
 */
export type ClaimOutcome =
  | { outcome: "claimed"; job: JobRecord; held: boolean }
  | { outcome: "finished" | "user_disabled" }
  | { outcome: "tenant_busy"; userId: string; running: number; cap: number };

/** What a completion charges: the amounts used, or "release" (nothing charged: BYO key, cached result). */
export type QuotaCharge = { textTokens: number; images: number; costMicroUsd: number } | "release";
