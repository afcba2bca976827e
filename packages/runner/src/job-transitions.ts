import type { ClaimLimits, ClaimOutcome, JobCompletion, JobFailure, ProviderCallRecord } from "@genq/db";

/**
 * The job lifecycle as the processor uses it (`JobLifecycle` of @genq/lifecycle is
 * the one in production). Each transition is conditional on the job's state, fenced
 * on the claimed attempt where one is given, and answers whether it applied. A
 * refused transition means the job was canceled meanwhile, finished, or another
 * delivery claimed it since; the processor then leaves it alone. Completion settles
 * the job's quota hold from its `charge`; every other transition that finishes a job
 * releases the hold: the processor never does.
 */
export interface JobTransitions {
  /** queued/active → active, within the owner's limits; `held`: the job holds its quota reservation. */
  claim(jobId: string, limits?: ClaimLimits): Promise<ClaimOutcome>;
  /** active → completed, with usage, calls and the quota charge. */
  complete(completion: JobCompletion): Promise<boolean>;
  /** active → queued after a failed attempt that will run again. */
  retry(
    jobId: string,
    failure: JobFailure,
    calls: readonly ProviderCallRecord[],
    attempt: number,
  ): Promise<boolean>;
  /** active → queued without an error: every provider is limited; the wait counts from `since`. */
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
