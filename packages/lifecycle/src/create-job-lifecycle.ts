import { createJobFinishedHooks, type Database, type HoldExcess, type WebhookRepository } from "@genq/db";
import type { EventPublisher } from "@genq/events";
import { WebhookOutbox, type WebhookQueue } from "@genq/webhooks";
import { JobLifecycle } from "./job-lifecycle.ts";
import type { SqlClientOptions } from "./sql-client.ts";

/** Options for {@link createJobLifecycle}: what a process that moves jobs has. */
export interface CreateJobLifecycleOptions {
  db: Database;
  /** Live events of finished jobs, published after commit. */
  events?: Pick<EventPublisher, "publishFinished"> | undefined;
  /**
   * Webhooks: events are written to the outbox in the transaction that finishes
   * their jobs, and queued for delivery right after it commits.
   */
  webhooks?:
    | {
        repository: WebhookRepository;
        queue?: WebhookQueue | undefined;
        onEnqueueError?: ((error: unknown) => void) | undefined;
      }
    | undefined;
  /** Told when a settlement found usage above the hold (charged at the hold). */
  onSettlementExcess?: ((excess: HoldExcess) => void) | undefined;
  /** At most one `batch.progress` webhook event per batch per this interval; default 5 s. */
  batchProgressIntervalMs?: number | undefined;
  sql?: SqlClientOptions | undefined;
}

/**
 * The job lifecycle with every effect of a finished job wired: quota holds
 * released, batch counters and events, the webhook outbox, live events. The API
 * and the workers build theirs with this one call.
 */
export function createJobLifecycle(options: CreateJobLifecycleOptions): JobLifecycle {
  const outbox =
    options.webhooks === undefined
      ? undefined
      : new WebhookOutbox({
          repository: options.webhooks.repository,
          queue: options.webhooks.queue,
          onEnqueueError: options.webhooks.onEnqueueError,
        });
  const effects = createJobFinishedHooks({
    outbox: outbox?.write,
    publish: options.events?.publishFinished,
    batchProgressIntervalMs: options.batchProgressIntervalMs,
  });
  return new JobLifecycle({
    db: options.db,
    effects: outbox === undefined ? effects : outbox.wrap(effects),
    onSettlementExcess: options.onSettlementExcess,
    sql: options.sql,
  });
}
