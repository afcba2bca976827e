import type { GenqEvent } from "@genq/core";
import {
  FANOUT_CHUNK,
  type JobFinishedHooks,
  type OutboxWrite,
  type Prisma,
  type WebhookRepository,
} from "@genq/db";
import type { WebhookQueue } from "./webhook-queue.ts";

/** Options for {@link WebhookOutbox}. */
export interface WebhookOutboxOptions {
  repository: WebhookRepository;
  /** Where new messages are queued right after commit; absent: the relay finds them. */
  queue?: WebhookQueue | undefined;
  /** Told when the prompt enqueue fails (the relay will enqueue the messages). */
  onEnqueueError?: ((error: unknown) => void) | undefined;
}

/**
 * Writes webhook messages in the finishing transaction and queues them as soon as
 * it commits. Give {@link WebhookOutbox.write} to `createJobFinishedHooks({ outbox })`
 * and pass the resulting hooks through {@link WebhookOutbox.wrap}.
 */
export class WebhookOutbox {
  readonly #repository: WebhookRepository;
  readonly #queue: WebhookQueue | undefined;
  readonly #onEnqueueError: (error: unknown) => void;
  /** Message ids by the events array they were written for (the array the after-commit hook gets). */
  readonly #written = new WeakMap<readonly GenqEvent[], OutboxWrite>();

  constructor(options: WebhookOutboxOptions) {
    this.#repository = options.repository;
    this.#queue = options.queue;
    this.#onEnqueueError = options.onEnqueueError ?? (() => {});
  }

  /** The outbox writer for `createJobFinishedHooks`. */
  readonly write = async (
    transaction: Prisma.TransactionClient,
    events: readonly GenqEvent[],
  ): Promise<void> => {
    const written = await this.#repository.writeOutbox(transaction, events);
    if (written.messages.length > 0 || written.fanouts.length > 0) this.#written.set(events, written);
  };

  /** Hooks that also queue the messages a transition wrote, once it committed. */
  wrap(hooks: JobFinishedHooks): JobFinishedHooks {
    return {
      inTransaction: hooks.inTransaction,
      afterCommit: (jobs, events) => {
        try {
          hooks.afterCommit?.(jobs, events);
        } finally {
          this.dispatch(events);
        }
      },
    };
  }

  /**
   * Queues the first attempt of the messages written for `events`, and writes and
   * queues the fan-outs the transaction deferred, {@link FANOUT_CHUNK} events per
   * transaction. Runs in the background after the transaction's caller went on;
   * best effort: the relay finishes whatever a crash or a Redis error left.
   */
  dispatch(events: readonly GenqEvent[]): void {
    const written = this.#written.get(events);
    if (written === undefined || this.#queue === undefined) return;
    this.#written.delete(events);
    const queue = this.#queue;
    const run = async () => {
      await queue.enqueueFirstAttempts(written.messages);
      for (let from = 0; from < written.fanouts.length; from += FANOUT_CHUNK) {
        const messages = await this.#repository.fanOut(written.fanouts.slice(from, from + FANOUT_CHUNK));
        await queue.enqueueFirstAttempts(messages);
      }
    };
    run().catch(this.#onEnqueueError);
  }
}
