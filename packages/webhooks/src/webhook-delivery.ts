import type { AttemptNext, WebhookRepository } from "@genq/db";
import type { GenqMetrics } from "@genq/metrics";
import { postWebhook } from "./post-webhook.ts";
import { DEFAULT_RETRY_SCHEDULE_MS, nextRetryDelayMs } from "./retry-schedule.ts";
import type { WebhookAllowlist } from "./webhook-allowlist.ts";
import type { WebhookJobData, WebhookQueue } from "./webhook-queue.ts";
import { webhookHeaders } from "./webhook-signature.ts";
import type { HostLookup } from "./webhook-target.ts";

/** Options for {@link WebhookDeliverer}. */
export interface WebhookDelivererOptions {
  repository: WebhookRepository;
  /** Where the next attempt is queued after a failed one. */
  queue: WebhookQueue;
  /** Delays between attempts; default {@link DEFAULT_RETRY_SCHEDULE_MS}. */
  retryScheduleMs?: readonly number[] | undefined;
  /** Per-attempt deadline; default 15 s. */
  timeoutMs?: number | undefined;
  allowlist?: WebhookAllowlist | undefined;
  lookup?: HostLookup | undefined;
  metrics?: GenqMetrics | undefined;
  /**
   * An endpoint whose attempts failed continuously (no delivery) for this long is
   * disabled, and its owner told (`webhook_endpoint.disabled`).
   * @defaultValue {@link DEFAULT_DISABLE_FAILING_AFTER_MS} (5 days, as Svix)
   */
  disableFailingAfterMs?: number | undefined;
  random?: () => number;
  now?: () => Date;
}

/** Default of {@link WebhookDelivererOptions.disableFailingAfterMs}: 5 days. */
export const DEFAULT_DISABLE_FAILING_AFTER_MS = 5 * 24 * 3_600_000;

/** What {@link WebhookDeliverer.deliver} did with one queue job. */
export type DeliverResult =
  | { done: "skipped"; reason: string }
  | { done: "attempted"; outcome: string; status: number | null; next: AttemptNext["status"] };

/**
 * Makes one delivery attempt of an outbox message: claims the attempt in
 * Postgres (so a duplicate queue job does nothing), signs the stored body with
 * the endpoint's (or the user's) secret, and the previous one during its grace
 * period, POSTs it, logs the attempt and schedules the next one per the retry
 * schedule. A 410 Gone disables the endpoint; a refused target is not retried.
 */
export class WebhookDeliverer {
  readonly #options: WebhookDelivererOptions;
  readonly #schedule: readonly number[];
  readonly #timeoutMs: number;
  readonly #disableFailingAfterMs: number;
  readonly #now: () => Date;

  constructor(options: WebhookDelivererOptions) {
    this.#options = options;
    this.#schedule = options.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#disableFailingAfterMs = options.disableFailingAfterMs ?? DEFAULT_DISABLE_FAILING_AFTER_MS;
    this.#now = options.now ?? (() => new Date());
  }

  /** The per-attempt deadline in force. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** The retry schedule in force. */
  get retryScheduleMs(): readonly number[] {
    return this.#schedule;
  }

  async deliver(job: WebhookJobData): Promise<DeliverResult> {
    const { repository, queue, metrics } = this.#options;
    const target = await repository.findForDelivery(job.messageId);
    if (target === null) return { done: "skipped", reason: "message or endpoint deleted" };
    const { message, endpoint, url } = target;
    if (message.status !== "pending" || message.attempts !== job.attempt - 1) {
      return { done: "skipped", reason: `message is ${message.status} at attempt ${message.attempts}` };
    }
    if (message.endpointId !== null && (endpoint === null || endpoint.disabledAt !== null)) {
      await repository.cancelMessage(message.id);
      return { done: "skipped", reason: "endpoint disabled" };
    }
    const secrets = endpoint ?? (await repository.userSecret(message.userId));
    // An attempt ends within the timeout; past twice that (and a second) its worker is gone.
    const leaseUntil = new Date(this.#now().getTime() + 2 * this.#timeoutMs + 1_000);
    if (!(await repository.claimAttempt(message.id, job.attempt, leaseUntil))) {
      return { done: "skipped", reason: "attempt taken by another delivery" };
    }
    const body = JSON.stringify(message.payload);
    const headers = webhookHeaders(secrets, message.id, body, this.#now());
    const result = await postWebhook({
      url,
      headers,
      body,
      timeoutMs: this.#timeoutMs,
      allowlist: this.#options.allowlist,
      lookup: this.#options.lookup,
    });
    metrics?.webhookDeliveries.inc({ outcome: result.outcome });
    metrics?.webhookDeliveryDuration.observe(result.latencyMs / 1_000);

    const gone = result.status === 410;
    let next: AttemptNext;
    let delayMs: number | undefined;
    if (result.outcome === "delivered") {
      next = { status: "delivered" };
    } else if (gone || result.outcome === "refused") {
      next = { status: "failed" };
    } else {
      const failures = (await repository.failuresInARow(message.id, this.#schedule.length * 10)) + 1;
      delayMs = nextRetryDelayMs(this.#schedule, failures, this.#options.random);
      next =
        delayMs === undefined
          ? { status: "failed" }
          : { status: "retry", at: new Date(this.#now().getTime() + delayMs) };
    }
    const recorded = await repository.recordAttempt({
      endpointId: message.endpointId,
      messageId: message.id,
      attempt: job.attempt,
      outcome: result.outcome,
      responseStatus: result.status,
      latencyMs: result.latencyMs,
      responseExcerpt: result.excerpt,
      errorMessage: gone ? "the receiver answered 410 Gone" : result.errorMessage,
      next,
    });
    const disableReason =
      endpoint === null
        ? undefined
        : gone
          ? `${url} answered 410 Gone`
          : this.#failingTooLong(recorded.failingSince);
    if (endpoint !== null && disableReason !== undefined) {
      const notices = await repository.disableEndpoint(endpoint.id, disableReason);
      metrics?.webhookEndpointsDisabled.inc({ reason: gone ? "gone" : "failing" });
      // Lost with Redis, or the enqueue fails: the relay queues them (they are due now).
      await queue.enqueueFirstAttempts(notices).catch(() => {});
    } else if (delayMs !== undefined) {
      // Lost with Redis, or never added: the relay queues it when it is due.
      await queue.enqueue(message, job.attempt + 1, delayMs).catch(() => {});
    }
    return { done: "attempted", outcome: result.outcome, status: result.status, next: next.status };
  }

  /** The reason to disable an endpoint failing since `since`, when that is long enough. */
  #failingTooLong(since: Date | null): string | undefined {
    if (since === null || this.#now().getTime() - since.getTime() < this.#disableFailingAfterMs)
      return undefined;
    return `every attempt failed since ${since.toISOString()} (disabled after ${this.#disableFailingAfterMs} ms without a delivery)`;
  }
}
