import type { JobRepository } from "@genq/db";
import type { QuotaLedger } from "@genq/quota";
import type { JobTransitions } from "./job-transitions.ts";

/**
 * {@link JobTransitions} over today's {@link JobRepository}: the completion's charge
 * is settled (or its hold released) in the completing transaction; the repository's
 * finished-job hooks release the hold of a job that fails or is canceled. Holds are
 * never taken at admission here (`held: false`).
 */
export function repositoryTransitions(jobs: JobRepository, quota?: QuotaLedger): JobTransitions {
  return {
    async claim(jobId, limits) {
      const claim = await jobs.claimFor(jobId, limits);
      return claim.outcome === "claimed" ? { ...claim, held: false } : claim;
    },
    complete({ charge, ...completion }) {
      if (quota === undefined || charge === undefined) return jobs.complete(completion);
      return jobs.complete({
        ...completion,
        onCompleted: async (transaction) => {
          if (charge === "release") await quota.release(completion.jobId, transaction);
          else await quota.settle({ jobId: completion.jobId, ...charge }, transaction);
        },
      });
    },
    retry: (jobId, failure, calls, attempt) => jobs.recordRetry(jobId, failure, calls, attempt),
    postpone: (jobId, calls, attempt, since) => jobs.postpone(jobId, calls, attempt, since),
    fail: (jobId, failure, calls, attempt) => jobs.fail(jobId, failure, calls, attempt),
    cancelIfRequested: (jobId, calls, attempt) => jobs.markCanceledIfRequested(jobId, calls, attempt),
  };
}
