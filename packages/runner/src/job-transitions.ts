import type { ClaimLimits, JobCompletion, JobFailure, JobRecord, ProviderCallRecord } from "@genq/db";

/**
 * What a claim did. `claimed`: the job is the caller's to run; `held` says its quota
 * hold was taken at admission (the processor then reserves nothing). `finished`:
 * gone, finished, or not claimable (a cancel may be pending). `user_disabled`: its
 * owner is disabled and the claim canceled it. `tenant_busy`: its owner already runs
 * `cap` jobs; the job was left queued, untouched.
 */
export type ClaimOutcome =
  | { outcome: "claimed"; job: JobRecord; held: boolean }
  | { outcome: "finished" | "user_disabled" }
  | { outcome: "tenant_busy"; userId: string; running: number; cap: number };

/**
 * What the quota is charged when a job completes, settled in the completing
 * transaction: the usage, or `"release"` (the result ran on the user's own key or
 * came from the cache: the hold is let go, nothing charged).
 */
export type CompletionCharge = { textTokens: number; images: number; costMicroUsd: number } | "release";

/** A finished attempt's result, as the lifecycle records it. */
export type AttemptCompletion = Omit<JobCompletion, "onCompleted"> & {
  /** Absent when the worker meters no quota. */
  charge?: CompletionCharge | undefined;
};

/**
 * The job lifecycle as the processor uses it: each transition is conditional on the
 * job's state (and fenced on the claimed attempt where one is given) and answers
 * whether it applied. A refused transition means the job was canceled meanwhile,
 * finished, or another delivery claimed it since; the processor then leaves it alone.
 * Every transition that finishes a job releases its quota hold; completion settles it.
 */
export interface JobTransitions {
  /** queued/active → active, within the owner's limits. */
  claim(jobId: string, limits?: ClaimLimits): Promise<ClaimOutcome>;
  /** active → completed, with usage, calls and the charge. */
  complete(completion: AttemptCompletion): Promise<boolean>;
  /** active → queued after a failed attempt that will run again. */
  retry(
    jobId: string,
    failure: JobFailure,
    calls: readonly ProviderCallRecord[],
    attempt: number,
  ): Promise<boolean>;
  /** active → queued without an error: every provider is limited; waits from `since`. */
  postpone(
    jobId: string,
    calls: readonly ProviderCallRecord[],
    attempt: number,
    since: Date,
  ): Promise<boolean>;
  /** unfinished → failed. */
  fail(
    jobId: string,
    failure: JobFailure,
    calls?: readonly ProviderCallRecord[],
    attempt?: number,
  ): Promise<boolean>;
  /** unfinished → canceled, when a cancel was requested. */
  cancelIfRequested(jobId: string, calls?: readonly ProviderCallRecord[], attempt?: number): Promise<boolean>;
}
