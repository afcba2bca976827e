import { QueuedJobPayload } from "@genq/core";
import type { JobCompletion, JobRecord, ProviderCallRecord, QuotaCharge } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import { BYO_KEY_ID } from "@genq/providers";
import { chargedTextTokens } from "@genq/quota";
import { extractTraceContext, inSpan, SpanKind } from "@genq/telemetry";
import { DelayedError, type Job, UnrecoverableError } from "bullmq";
import type { Logger } from "pino";
import type { AttemptOutput } from "./attempt-output.ts";
import { type AttemptResult, afterRefusal, decideFailedAttempt, unclaimedResult } from "./attempt-result.ts";
import { runImageAttempt } from "./image-attempt.ts";
import { DEFAULT_POSTPONE_DEADLINE_MS, type JobProcessorOptions } from "./job-processor-options.ts";

import { runTextAttempt } from "./text-attempt.ts";

/** How long a job waits when its row cannot be claimed (Postgres unreachable). */
const CLAIM_RETRY_DELAY_MS = 5_000;

/** What one delivery ended with, as BullMQ stores it (small: the result lives in Postgres). */
export interface AttemptOutcome {
  status: "completed" | "canceled" | "skipped";
}

const COMPLETED: AttemptOutcome = Object.freeze({ status: "completed" });
const CANCELED: AttemptOutcome = Object.freeze({ status: "canceled" });
const SKIPPED: AttemptOutcome = Object.freeze({ status: "skipped" });

/**
 * Runs deliveries of genq jobs for a BullMQ worker. Each reads as its outline:
 * claim the row → run the attempt → settle its {@link AttemptResult} (one lifecycle
 * transition, then BullMQ's action). Transitions are conditional and fenced on the
 * claimed attempt, so a retried, stalled or duplicated delivery never completes a job
 * twice.
 *
 * Cancels reach a running attempt through {@link JobProcessor.cancel}, not BullMQ's
 * signal: {@link JobProcessor.process} takes no signal, so BullMQ allocates no abort
 * controller per job, and an attempt has one (its own, which also carries its deadline).
 */
export class JobProcessor {
  readonly #options: JobProcessorOptions;
  readonly #logger: Logger;
  readonly #postponeDeadlineMs: number;
  /** Deliveries in flight in this process, by job id, for {@link JobProcessor.cancel}. */
  readonly #running = new Map<string, Delivery>();

  constructor(options: JobProcessorOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#postponeDeadlineMs = options.postponeDeadlineMs ?? DEFAULT_POSTPONE_DEADLINE_MS;
  }

  /** The BullMQ processor function: one delivery of a job. */
  readonly process = (job: Job<QueuedJobPayload>, token?: string): Promise<AttemptOutcome> => {
    const payload = QueuedJobPayload.safeParse(job.data);
    if (!payload.success) {
      return Promise.reject(new UnrecoverableError(`malformed queue payload for BullMQ job ${job.id}`));
    }
    const delivery = new Delivery(job, payload.data.jobId, token);
    return inSpan(
      "genq.job.run",
      {
        kind: SpanKind.CONSUMER,
        parent: extractTraceContext(payload.data.trace),
        attributes: {
          "genq.job.id": delivery.jobId,
          "genq.queue": job.queueName,
          "genq.delivery": job.attemptsMade + 1,
        },
      },
      () => this.#deliver(delivery),
    );
  };

  /**
   * Aborts the attempt of `jobId` running here (its cancel was requested); true when
   * one was. The attempt then settles as canceled.
   */
  cancel(jobId: string, reason = "canceled by request"): boolean {
    const delivery = this.#running.get(jobId);
    if (delivery === undefined) return false;
    delivery.cancel(reason);
    return true;
  }

  /** One delivery: claim → run → settle. */
  async #deliver(delivery: Delivery): Promise<AttemptOutcome> {
    const unclaimed = await this.#claim(delivery);
    if (unclaimed !== undefined) return this.#settle(delivery, unclaimed);
    const record = delivery.claimed();
    this.#running.set(delivery.jobId, delivery);
    try {
      const result = await this.#run(delivery, record);
      const outcome = await this.#settle(delivery, result);
      this.#logger.info(delivery.fields({ outcome: outcome.status }), "job finished");
      return outcome;
    } finally {
      if (this.#running.get(delivery.jobId) === delivery) this.#running.delete(delivery.jobId);
      // The owner has one job less running: let a parked one of theirs go.
      await this.#options.tenantGate?.wake(record.userId);
    }
  }

  /** Claims the job's row; undefined when claimed, else what the delivery comes to. */
  async #claim(delivery: Delivery): Promise<AttemptResult | undefined> {
    const { lifecycle, tenantGate } = this.#options;
    let claim: Awaited<ReturnType<typeof lifecycle.claim>>;
    try {
      claim = await lifecycle.claim(delivery.jobId, tenantGate?.limits);
    } catch (error) {
      // Postgres is unreachable: nothing ran, so postpone without spending an attempt.
      this.#logger.warn(delivery.fields({ err: error }), "could not claim the job; postponing it");
      if (delivery.token === undefined) throw error;
      return { kind: "delayed", wait: "database", delayMs: CLAIM_RETRY_DELAY_MS };
    }
    if (claim.outcome === "claimed") {
      delivery.claim(claim.job, claim.held);
      return undefined;
    }
    return unclaimedResult(claim, tenantGate !== undefined && delivery.token !== undefined);
  }

  /** Runs the claimed attempt under its deadline; its result, decided without I/O. */
  async #run(delivery: Delivery, record: JobRecord): Promise<AttemptResult> {
    const options = this.#options;
    this.#logger.info(delivery.fields({ type: record.type, priority: record.priority }), "job started");
    // A streaming text job's events are published even unwatched (as its deltas are), so a
    // client joining mid-stream reads job.started before the text.
    const streaming =
      record.type === "text" && (record.input as { stream?: unknown } | null)?.stream === true;
    await options.events?.publishJobEvent(
      record.id,
      "job.started",
      { id: record.id, object: "job", status: "active", attempt: record.attempts },
      { streaming },
    );
    const signal = delivery.start(options.attemptTimeoutMs);
    try {
      const output =
        record.type === "image"
          ? await runImageAttempt(options, record, delivery.held, signal)
          : await runTextAttempt(options, record, delivery.held, signal);
      observeOutput(options.metrics, output);
      return { kind: "completed", completion: this.#completion(record, output) };
    } catch (error) {
      const job = delivery.job;
      return decideFailedAttempt({
        error,
        timedOut: delivery.timedOut,
        timeoutMs: options.attemptTimeoutMs,
        cancelRequested: delivery.canceled,
        attemptsMade: job.attemptsMade,
        attemptsAllowed: job.opts.attempts ?? 1,
        canDelay: delivery.token !== undefined,
        postponedSince: record.postponedSince,
        postponeDeadlineMs: this.#postponeDeadlineMs,
        now: Date.now(),
      });
    } finally {
      delivery.stop();
    }
  }

  /** The completion the lifecycle records, with what the quota is charged for it. */
  #completion(record: JobRecord, output: AttemptOutput): JobCompletion {
    const { cacheHit, ...completion } = output;
    return {
      jobId: record.id,
      attempt: record.attempts,
      ...completion,
      ...(this.#options.quota === undefined ? {} : { charge: chargeOf(record, output) }),
    };
  }

  /**
   * The one switch that applies an attempt's result: the lifecycle transition first,
   * then what BullMQ is told (return, `moveToDelayed` + `DelayedError`, a retryable
   * error, `UnrecoverableError`). A refused transition settles {@link afterRefusal}.
   */
  async #settle(delivery: Delivery, result: AttemptResult): Promise<AttemptOutcome> {
    const { lifecycle } = this.#options;
    const { jobId, attempt } = delivery;
    switch (result.kind) {
      case "completed":
        if (await lifecycle.complete(result.completion)) return COMPLETED;
        return this.#settle(delivery, afterRefusal(result));
      case "canceled":
        // A disabled user's job was canceled by the claim itself.
        if (
          result.when === "user_disabled" ||
          (await lifecycle.cancelIfRequested(jobId, result.calls, attempt))
        ) {
          this.#logger.info(delivery.fields(), CANCELED_MESSAGES[result.when]);
          return CANCELED;
        }
        return this.#settle(delivery, afterRefusal(result));
      case "skipped":
        this.#logger.info(delivery.fields({ reason: result.reason }), SKIPPED_MESSAGES[result.reason]);
        return SKIPPED;
      case "delayed":
        return this.#delay(delivery, result);
      case "retry": {
        if (!(await lifecycle.retry(jobId, result.failure, result.calls, attempt ?? 0)))
          return this.#settle(delivery, afterRefusal(result));
        this.#logFailure(delivery, result.error);
        this.#logger.info(
          delivery.fields({ code: result.error.code }),
          `attempt failed, will retry: ${result.error.message}`,
        );
        // Tells a live client that text streamed by this attempt is void: the next one starts over.
        await this.#options.events?.publishJobEvent(jobId, "job.retrying", {
          id: jobId,
          object: "job",
          status: "queued",
          attempt,
          error: result.failure,
        });
        throw result.error;
      }
      case "failed": {
        const { postponedSince, error } = result;
        // Past the postponement deadline no provider was called: the run counts as a
        // postponement (not an attempt), then the job fails.
        if (
          postponedSince !== undefined &&
          !(await lifecycle.postpone(jobId, result.calls, attempt ?? 0, postponedSince))
        )
          return this.#settle(delivery, afterRefusal(result));
        const calls = postponedSince === undefined ? result.calls : undefined;
        if (!(await lifecycle.fail(jobId, result.failure, calls, attempt)))
          return this.#settle(delivery, afterRefusal(result));
        this.#logFailure(delivery, error);
        this.#logger.warn(
          delivery.fields({ code: error.code, retryable: error.retryable }),
          `job failed: ${error.message}`,
        );
        // UnrecoverableError tells BullMQ not to spend the remaining attempts.
        throw error.retryable ? error : new UnrecoverableError(`${error.code}: ${error.message}`);
      }
    }
  }

  /** A `delayed` result: the job waits in BullMQ's delayed set, spending no attempt. */
  async #delay(
    delivery: Delivery,
    result: Extract<AttemptResult, { kind: "delayed" }>,
  ): Promise<AttemptOutcome> {
    const { job, jobId, attempt } = delivery;
    // Only decided for a delivery that holds its lock (see unclaimedResult, decideFailedAttempt).
    const token = delivery.token ?? "";
    switch (result.wait) {
      case "database":
        await job.moveToDelayed(Date.now() + result.delayMs, token);
        throw new DelayedError();
      case "tenant":
        // Its owner already runs its cap of jobs: set it aside until one of them stops.
        await this.#options.tenantGate?.park(job, result.userId, token);
        this.#logger.debug(
          delivery.fields({ running: result.running, cap: result.cap }),
          "tenant at its in-flight cap; job parked",
        );
        throw new DelayedError();
      case "providers": {
        if (!(await this.#options.lifecycle.postpone(jobId, result.calls, attempt ?? 0, result.since)))
          return this.#settle(delivery, afterRefusal(result));
        this.#logger.info(
          delivery.fields({ delayMs: result.delayMs }),
          "every provider candidate is limited; job delayed",
        );
        await this.#options.events?.publishJobEvent(jobId, "job.delayed", {
          id: jobId,
          object: "job",
          status: "queued",
          attempt,
          delayMs: result.delayMs,
        });
        await job.moveToDelayed(Date.now() + result.delayMs, token);
        throw new DelayedError();
      }
    }
  }

  /** An internal error's cause (a bug, a lost connection) goes to the log, never to the user. */
  #logFailure(delivery: Delivery, error: { code: string; cause?: unknown }): void {
    if (error.code === "internal_error")
      this.#logger.error(delivery.fields({ err: error.cause }), "attempt failed unexpectedly");
  }
}

const CANCELED_MESSAGES = {
  queued: "job canceled before it ran",
  running: "job canceled while running",
  settling: "job canceled before its attempt was recorded",
  user_disabled: "job canceled: its user is disabled",
} as const;

const SKIPPED_MESSAGES = {
  finished: "job skipped: nothing left to run",
  superseded: "job skipped: finished meanwhile or claimed by another delivery",
} as const;

/**
 * One delivery of a job: its claim, its attempt's abort controller (cancel and
 * deadline in one signal) and its log fields. One object per delivery, no closures:
 * the deadline timer gets the delivery as its argument.
 */
class Delivery {
  readonly job: Job<QueuedJobPayload>;
  readonly jobId: string;
  readonly token: string | undefined;
  /** The claimed row's `attempts`, which fences every transition of this delivery. */
  attempt: number | undefined;
  /** The claim carries the quota hold taken at admission. */
  held = false;
  canceled = false;
  timedOut = false;
  #record: JobRecord | undefined;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(job: Job<QueuedJobPayload>, jobId: string, token: string | undefined) {
    this.job = job;
    this.jobId = jobId;
    this.token = token;
  }

  claim(record: JobRecord, held: boolean): void {
    this.#record = record;
    this.attempt = record.attempts;
    this.held = held;
  }

  claimed(): JobRecord {
    if (this.#record === undefined) throw new Error(`job ${this.jobId} was not claimed`);
    return this.#record;
  }

  /** Starts the attempt's deadline; the signal aborts on it or on a cancel. */
  start(timeoutMs: number): AbortSignal {
    const controller = new AbortController();
    this.#controller = controller;
    if (this.canceled) controller.abort("canceled by request");
    else this.#timer = setTimeout(timeOut, timeoutMs, this);
    return controller.signal;
  }

  cancel(reason: string): void {
    this.canceled = true;
    this.#controller?.abort(reason);
  }

  expire(): void {
    this.timedOut = true;
    this.#controller?.abort(new DOMException("the attempt timed out", "TimeoutError"));
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Log fields of this delivery, plus `extra`: no child logger per job. */
  fields(extra?: Record<string, unknown>): Record<string, unknown> {
    return { jobId: this.jobId, queue: this.job.queueName, attempt: this.job.attemptsMade + 1, ...extra };
  }
}

function timeOut(delivery: Delivery): void {
  delivery.expire();
}

/**
 * What the quota is charged for a completed job: its usage, or nothing on the user's
 * own key (usage and cost are still recorded) or for a cached result.
 */
function chargeOf(record: JobRecord, output: AttemptOutput): QuotaCharge {
  if (output.keyId === BYO_KEY_ID || output.cacheHit === true) return "release";
  return {
    textTokens: record.type === "text" ? chargedTextTokens(output.usage) : 0,
    images: output.usage.images ?? 0,
    costMicroUsd: output.costMicroUsd,
  };
}

/** Provider call figures and cost of a successful attempt, for /metrics. */
function observeOutput(metrics: GenqMetrics | undefined, output: AttemptOutput): void {
  if (metrics === undefined) return;
  observeCalls(metrics, output.calls ?? []);
  if (output.costMicroUsd > 0) {
    metrics.providerCost.inc({ provider: output.provider, model: output.model }, output.costMicroUsd);
  }
}

function observeCalls(metrics: GenqMetrics, calls: readonly ProviderCallRecord[]): void {
  for (const call of calls) {
    const labels = { provider: call.provider, model: call.model };
    metrics.providerCalls.inc({
      ...labels,
      outcome: call.outcome === "ok" ? "ok" : (call.errorCode ?? call.outcome),
    });
    if (call.outcome === "skipped") continue;
    metrics.providerLatency.observe(labels, call.latencyMs / 1_000);
    if (call.inputTokens) metrics.providerTokens.inc({ ...labels, direction: "input" }, call.inputTokens);
    if (call.outputTokens) metrics.providerTokens.inc({ ...labels, direction: "output" }, call.outputTokens);
  }
}
