import { GenqError, QueuedJobPayload, TextJobInput, toChatMessages } from "@genq/core";
import type { JobRecord, JobRepository } from "@genq/db";
import { type ProviderRouter, RouteDelayedError, RouteFailedError } from "@genq/providers";
import { DelayedError, type Job, UnrecoverableError } from "bullmq";
import type { Logger } from "pino";

/** How long a job waits when its row cannot be claimed (Postgres unreachable). */
const CLAIM_RETRY_DELAY_MS = 5_000;

/** What one attempt ended with, as BullMQ stores it (small: the result lives in Postgres). */
export interface AttemptOutcome {
  status: "completed" | "canceled" | "skipped";
}

/** Dependencies of {@link createJobProcessor}. */
export interface JobProcessorOptions {
  jobs: JobRepository;
  router: ProviderRouter;
  logger: Logger;
  /** Per-attempt deadline for the provider call. */
  attemptTimeoutMs: number;
}

/**
 * Creates the BullMQ processor that runs one attempt of a genq job: claim the row,
 * call the provider, and record the outcome in Postgres. Effects are keyed by job
 * id, so a retried, stalled or duplicated delivery never completes a job twice.
 */
export function createJobProcessor(options: JobProcessorOptions) {
  const { jobs, logger } = options;

  return async function processJob(
    job: Job<QueuedJobPayload>,
    token?: string,
    cancelSignal?: AbortSignal,
  ): Promise<AttemptOutcome> {
    const payload = QueuedJobPayload.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`malformed queue payload for BullMQ job ${job.id}`);
    const jobId = payload.data.jobId;
    const log = logger.child({ jobId, queue: job.queueName, attempt: job.attemptsMade + 1 });
    let record: JobRecord | null;
    try {
      record = await jobs.claim(jobId);
    } catch (error) {
      // Postgres is unreachable: nothing ran, so postpone without spending an attempt.
      log.warn({ err: error }, "could not claim the job; postponing it");
      if (token === undefined) throw error;
      await job.moveToDelayed(Date.now() + CLAIM_RETRY_DELAY_MS, token);
      throw new DelayedError();
    }
    if (record === null) return skip(jobs, jobId, log);
    log.info({ type: record.type, priority: record.priority }, "job started");

    const timeout = AbortSignal.timeout(options.attemptTimeoutMs);
    const signal = cancelSignal === undefined ? timeout : AbortSignal.any([cancelSignal, timeout]);
    try {
      const outcome = await runAttempt(options, record, record.attempts, signal);
      log.info({ outcome: outcome.status }, "job finished");
      return outcome;
    } catch (error) {
      const calls =
        error instanceof RouteFailedError || error instanceof RouteDelayedError ? error.calls : [];
      if (cancelSignal?.aborted && (await jobs.markCanceledIfRequested(jobId, calls, record.attempts))) {
        log.info("job canceled while running");
        return { status: "canceled" };
      }
      if (error instanceof RouteDelayedError && token !== undefined) {
        // Every candidate is limited for a while: wait in BullMQ's delayed set, spending no attempt.
        if (!(await jobs.postpone(jobId, calls, record.attempts))) {
          return (await jobs.markCanceledIfRequested(jobId)) ? { status: "canceled" } : { status: "skipped" };
        }
        log.info({ delayMs: error.delayMs }, "every provider candidate is limited; job delayed");
        await job.moveToDelayed(Date.now() + error.delayMs, token);
        throw new DelayedError();
      }
      const failure = classify(error, timeout.aborted, options.attemptTimeoutMs);
      if (failure.code === "internal_error") log.error({ err: error }, "attempt failed unexpectedly");
      const attempts = job.opts.attempts ?? 1;
      const finalAttempt = !failure.retryable || job.attemptsMade + 1 >= attempts;
      if (finalAttempt) {
        await jobs.fail(jobId, failure, calls, record.attempts);
        log.warn({ code: failure.code, retryable: failure.retryable }, `job failed: ${failure.message}`);
        // UnrecoverableError tells BullMQ not to spend the remaining attempts.
        throw failure.retryable ? failure : new UnrecoverableError(`${failure.code}: ${failure.message}`);
      }
      if (!(await jobs.recordRetry(jobId, failure, calls, record.attempts))) {
        log.info("job canceled after a failed attempt; not retrying");
        return { status: "canceled" };
      }
      log.info({ code: failure.code }, `attempt failed, will retry: ${failure.message}`);
      throw failure;
    }
  };
}

async function runAttempt(
  options: JobProcessorOptions,
  record: JobRecord,
  attempt: number,
  signal: AbortSignal,
): Promise<AttemptOutcome> {
  if (record.type !== "text") {
    throw new GenqError("invalid_request", `job type ${record.type} is not supported by this worker yet`);
  }
  const parsed = TextJobInput.safeParse(record.input);
  if (!parsed.success) {
    throw new GenqError(
      "invalid_request",
      `stored input is invalid: ${parsed.error.issues[0]?.message ?? "unknown"}`,
    );
  }
  const input = parsed.data;
  const routed = await options.router.generateText(
    {
      ...(record.provider === null ? {} : { provider: record.provider }),
      ...(record.model === null ? {} : { model: record.model }),
    },
    {
      messages: toChatMessages(input),
      ...(input.maxTokens === undefined ? {} : { maxTokens: input.maxTokens }),
      ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
      ...(input.topP === undefined ? {} : { topP: input.topP }),
      ...(input.stop === undefined ? {} : { stop: input.stop }),
      ...(input.providerOptions === undefined ? {} : { providerOptions: input.providerOptions }),
    },
    { signal },
  );
  const { output } = routed;
  const completed = await options.jobs.complete({
    jobId: record.id,
    attempt,
    provider: routed.provider,
    model: routed.model,
    keyId: routed.keyId,
    usage: output.usage,
    costMicroUsd: routed.costMicroUsd,
    priceVersion: routed.priceVersion,
    calls: routed.calls,
    result: {
      text: output.text,
      finishReason: output.finishReason,
      provider: routed.provider,
      model: routed.model,
      ...(output.providerRequestId === undefined ? {} : { providerRequestId: output.providerRequestId }),
    },
  });
  if (completed) return { status: "completed" };
  // A cancel arrived while the provider was working: honour it now (a safe point).
  // Otherwise another delivery owns the job now (e.g. after a stall); leave it alone.
  return (await options.jobs.markCanceledIfRequested(record.id))
    ? { status: "canceled" }
    : { status: "skipped" };
}

async function skip(jobs: JobRepository, jobId: string, log: Logger): Promise<AttemptOutcome> {
  if (await jobs.markCanceledIfRequested(jobId)) {
    log.info("job canceled before it ran");
    return { status: "canceled" };
  }
  const current = await jobs.find(jobId);
  log.info({ status: current?.status ?? "missing" }, "job skipped: nothing left to run");
  return { status: "skipped" };
}

/**
 * Any failure as a GenqError; unknown errors (bugs, lost connections) are retryable.
 * Their text stays in the logs: it can hold internals that users must not see.
 */
function classify(error: unknown, timedOut: boolean, timeoutMs: number): GenqError {
  if (timedOut) {
    return new GenqError("timeout", `the attempt did not finish within ${timeoutMs} ms`, { retryable: true });
  }
  if (GenqError.is(error)) return error;
  return new GenqError(
    "internal_error",
    "the worker hit an internal error running this job (see worker logs)",
    {
      retryable: true,
      cause: error,
    },
  );
}
