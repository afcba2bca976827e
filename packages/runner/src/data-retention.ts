import type { RetentionRepository } from "@genq/db";
import type { ObjectStorage } from "@genq/storage";

const DAY_MS = 86_400_000;

/** How long each kind of record is kept, in days; 0 keeps it forever. */
export interface RetentionPolicy {
  /** Finished jobs (with their provider calls, stored images and finished batches). */
  jobsDays: number;
  /** Provider calls (the operators' call log), when they should go before their jobs. */
  providerCallsDays: number;
  /** Webhook messages no longer pending, with their delivery logs. */
  webhookMessagesDays: number;
  /** Uploaded images (`POST /v1/uploads`) that no unfinished job names. */
  uploadsDays: number;
}

/** Options for {@link sweepExpiredData}. */
export interface DataRetentionOptions {
  retention: RetentionRepository;
  storage: ObjectStorage;
  policy: RetentionPolicy;
  now?: Date;
  /**
   * Rows one statement deletes at most, so no statement holds locks for long.
   * @defaultValue 500
   */
  chunkSize?: number;
  /**
   * A run stops starting new chunks after this long; the next run goes on where it
   * stopped (a first run over a large backlog must not hold the maintenance queue).
   * @defaultValue 60000
   */
  budgetMs?: number;
}

/** Rows deleted by one run, per kind; `complete` is false when the budget ran out first. */
export interface DataRetentionOutcome {
  jobs: number;
  batches: number;
  providerCalls: number;
  webhookMessages: number;
  uploads: number;
  complete: boolean;
}

/**
 * Deletes what outlived its retention, in bounded chunks: finished jobs (and, with
 * them, their provider calls, images and finished batches), older provider calls,
 * settled webhook messages and uploads. Objects go before the rows that name them,
 * so a crash leaves a row pointing at nothing (deleted next time), never an object
 * nobody knows about. Usage records are kept: usage reports and the quota ledger
 * (`quota_usage`) read nothing that is deleted here.
 */
export async function sweepExpiredData(options: DataRetentionOptions): Promise<DataRetentionOutcome> {
  const { retention, storage, policy } = options;
  const now = options.now ?? new Date();
  const chunkSize = options.chunkSize ?? 500;
  const deadline = Date.now() + (options.budgetMs ?? 60_000);
  const cutoff = (days: number) => new Date(now.getTime() - days * DAY_MS);
  /** Runs `chunk` until it deletes less than a full chunk, or the budget runs out. */
  const drain = async (chunk: () => Promise<number>): Promise<{ deleted: number; done: boolean }> => {
    let deleted = 0;
    for (;;) {
      if (Date.now() >= deadline) return { deleted, done: false };
      const count = await chunk();
      deleted += count;
      if (count < chunkSize) return { deleted, done: true };
    }
  };
  const skipped = { deleted: 0, done: true };

  let afterJob: string | undefined;
  const jobsBefore = cutoff(policy.jobsDays);
  const jobs =
    policy.jobsDays > 0
      ? await drain(async () => {
          const expired = await retention.listExpiredJobs(jobsBefore, chunkSize, afterJob);
          afterJob = expired.ids.at(-1) ?? afterJob;
          if (expired.assetKeys.length > 0) await storage.deleteMany(expired.assetKeys);
          await retention.deleteJobs(expired.ids);
          return expired.ids.length;
        })
      : skipped;
  // A batch goes once its last item went.
  const batches =
    policy.jobsDays > 0 && jobs.done
      ? await drain(() => retention.deleteEmptyBatches(jobsBefore, chunkSize))
      : { deleted: 0, done: jobs.done };
  const providerCalls =
    policy.providerCallsDays > 0
      ? await drain(() => retention.deleteProviderCalls(cutoff(policy.providerCallsDays), chunkSize))
      : skipped;
  const webhookMessages =
    policy.webhookMessagesDays > 0
      ? await drain(() => retention.deleteWebhookMessages(cutoff(policy.webhookMessagesDays), chunkSize))
      : skipped;
  let afterUpload: string | undefined;
  const uploadsBefore = cutoff(policy.uploadsDays);
  const uploads =
    policy.uploadsDays > 0
      ? await drain(async () => {
          const expired = await retention.listExpiredUploads(uploadsBefore, chunkSize, afterUpload);
          afterUpload = expired.at(-1)?.id ?? afterUpload;
          if (expired.length > 0) await storage.deleteMany(expired.map((upload) => upload.key));
          await retention.deleteUploads(expired.map((upload) => upload.id));
          return expired.length;
        })
      : skipped;
  return {
    jobs: jobs.deleted,
    batches: batches.deleted,
    providerCalls: providerCalls.deleted,
    webhookMessages: webhookMessages.deleted,
    uploads: uploads.deleted,
    complete: [jobs, batches, providerCalls, webhookMessages, uploads].every((step) => step.done),
  };
}
