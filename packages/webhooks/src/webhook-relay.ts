import type { Logger } from "@genq/core";
import { FANOUT_CHUNK, type WebhookRepository } from "@genq/db";
import { type WebhookQueue, webhookJobId } from "./webhook-queue.ts";

/** Options for {@link WebhookRelay}. */
export interface WebhookRelayOptions {
  repository: WebhookRepository;
  queue: WebhookQueue;
  /** Takes a lease for one pass (`JobQueues.acquireLease`), so one process at a time relays. */
  acquireLease: (name: string, ttlMs: number) => Promise<boolean>;
  logger: Logger;
  /** How often to look; the first pass runs at start. Default 5 s. */
  intervalMs?: number | undefined;
  /** Messages per pass. Default 500. */
  batchSize?: number | undefined;
}

/**
 * Queues outbox messages whose next attempt is due but that Redis does not hold
 * waiting (Redis lost its data, the after-commit enqueue failed, a worker died
 * mid-attempt): Postgres says what is owed, so nothing is lost. Adding is
 * idempotent per (message, attempt); a finished BullMQ entry of a still-due
 * attempt (its run failed before the attempt was claimed) is replaced.
 */
export class WebhookRelay {
  readonly #options: WebhookRelayOptions;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  constructor(options: WebhookRelayOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? 5_000;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    const tick = () => {
      this.#options
        .acquireLease("webhook-relay", Math.max(this.#intervalMs - 100, 100))
        .then((leased) => (leased ? this.relayOnce() : 0))
        .catch((error: unknown) => this.#options.logger.warn({ err: error }, "webhook relay pass failed"));
    };
    tick();
    this.#timer = setInterval(tick, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => 0);
  }

  /** One pass; returns how many attempts were queued. Concurrent calls share a pass. */
  relayOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { repository, queue, logger } = this.#options;
    const batchSize = this.#options.batchSize ?? 500;
    // Fan-outs a process committed but did not write (it died, or Postgres failed it):
    // their messages are due at once, so this pass queues them below.
    const stale = await repository.pendingFanouts(new Date(Date.now() - this.#intervalMs), batchSize);
    for (let from = 0; from < stale.length; from += FANOUT_CHUNK) {
      await repository.fanOut(stale.slice(from, from + FANOUT_CHUNK));
    }
    if (stale.length > 0) logger.info({ fanouts: stale.length }, "webhook relay fanned out leftover events");
    const due = await repository.dueMessages(batchSize);
    let queued = 0;
    await Promise.all(
      due.map(async (message) => {
        const attempt = message.attempts + 1;
        const jobId = webhookJobId(message.id, attempt);
        const state = await queue.queue.getJobState(jobId);
        if (state === "completed" || state === "failed") await queue.queue.remove(jobId);
        else if (state !== "unknown") return;
        await queue.enqueue(message, attempt);
        queued += 1;
      }),
    );
    if (queued > 0) logger.info({ queued }, "webhook relay queued due messages");
    return queued;
  }
}
