import { GenqError, TextJobInput, type TextJobInput as TextJobInputType, toChatMessages } from "@genq/core";
import type { ClaimedBatchItem, JobRecord } from "@genq/db";
import { PROVIDER_BATCH_TAG, type ProviderBatchRequest, planJob } from "@genq/providers";
import { parseStoredInput } from "./attempt-output.ts";
import type { ResolvedEconomyOptions } from "./economy-options.ts";
import { type EconomyTarget, economyTarget } from "./economy-targets.ts";
import { selectionOf } from "./user-key-clients.ts";

/** Claims, transitions and reservations run this many at a time (group commit batches them). */
export const ECONOMY_CONCURRENCY = 100;

interface Grouped {
  target: EconomyTarget;
  items: Array<{ jobId: string; attempt: number; request: ProviderBatchRequest }>;
}

/**
 * Submits released items of an economy batch: each is claimed through the lifecycle
 * (it is `active` while the provider holds it), its worst case reserved against the
 * quota as an online run would, and the items are grouped by provider, model and key
 * and sent as provider batches. Items whose route offers no batch API are queued to
 * run online; items that do not fit the quota fail with `quota_exceeded`.
 */
export class EconomySubmitter {
  readonly #options: ResolvedEconomyOptions;

  constructor(options: ResolvedEconomyOptions) {
    this.#options = options;
  }

  /** Submits up to `submitChunk` items of a batch; returns how many were taken. */
  async submitBatch(batchId: string, userId: string): Promise<number> {
    const items = await this.#options.batches.claimItems(batchId, this.#options.submitChunk);
    if (items.length === 0) return 0;
    const groups = new Map<string, Grouped>();
    const online: ClaimedBatchItem[] = [];
    await forEachLimited(items, ECONOMY_CONCURRENCY, async (item) => {
      const placed = await this.#place(item);
      if (placed === "online") online.push(item);
      else if (placed !== undefined) {
        const key = `${placed.target.provider}\u0000${placed.target.model}\u0000${placed.target.keyId}`;
        let group = groups.get(key);
        if (group === undefined) {
          group = { target: placed.target, items: [] };
          groups.set(key, group);
        }
        group.items.push(placed.item);
      }
    });
    if (online.length > 0) await this.#runOnline(online, batchId);
    for (const group of groups.values()) {
      const { api } = group.target;
      for (let start = 0; start < group.items.length; start += api.maxRequests) {
        await this.#submitGroup(
          batchId,
          userId,
          group.target,
          group.items.slice(start, start + api.maxRequests),
        );
      }
    }
    return items.length;
  }

  /** Claims one item and decides where it runs; undefined when it will not run (finished, failed). */
  async #place(
    item: ClaimedBatchItem,
  ): Promise<"online" | { target: EconomyTarget; item: Grouped["items"][number] } | undefined> {
    const { lifecycle, router, quota } = this.#options;
    if (item.type !== "text") return "online";
    const claim = await lifecycle.claim(item.id);
    if (claim.outcome !== "claimed") return undefined;
    const record = claim.job;
    const attempt = record.attempts;
    try {
      const input = parseStoredInput(TextJobInput, record.input);
      const messages = toChatMessages(input);
      const config = router.config();
      const plan = planJob(config, {
        type: "text",
        selection: selectionOf(record),
        messages,
        maxTokens: input.maxTokens,
      });
      const target = economyTarget(config, plan.targets);
      if (target === undefined) return "online";
      if (!claim.held)
        await quota?.reserve({
          jobId: record.id,
          userId: record.userId,
          textTokens: plan.textTokens,
          // The worst case online: a fallback may run the item online.
          costMicroUsd: plan.costMicroUsd,
        });
      return {
        target,
        item: {
          jobId: record.id,
          attempt,
          request: toBatchRequest(record, input, target.model, plan.outputTokens),
        },
      };
    } catch (error) {
      const failure =
        error instanceof GenqError
          ? { code: error.code, message: error.message }
          : { code: "internal_error", message: "the item could not be prepared for its provider batch" };
      if (!(error instanceof GenqError))
        this.#options.logger.error({ err: error, jobId: record.id }, "economy item could not be prepared");
      await lifecycle.fail(record.id, failure, undefined, attempt);
      return undefined;
    }
  }

  async #submitGroup(
    batchId: string,
    userId: string,
    target: EconomyTarget,
    items: Grouped["items"],
  ): Promise<void> {
    const { economy, logger, leaseMs, firstPollMs } = this.#options;
    const id = await economy.create({
      batchId,
      userId,
      provider: target.provider,
      model: target.model,
      keyId: target.keyId,
      items: items.map(({ jobId, attempt }) => ({ jobId, attempt })),
      leaseMs,
    });
    try {
      const state = await target.api.submit(
        items.map((item) => item.request),
        { metadata: { genq_batch: batchId, [PROVIDER_BATCH_TAG]: id } },
      );
      if (!(await economy.markSubmitted(id, state.id, firstPollMs))) {
        // This submitter was taken for dead while the provider answered (its lease lapsed):
        // the items fell back already, so the provider must not run them a second time.
        logger.warn(
          { batchId, providerBatch: id, provider: target.provider, externalId: state.id },
          "the provider accepted a batch whose submission was already given up; canceling it",
        );
        await target.api
          .cancel(state.id)
          .catch((error: unknown) =>
            logger.error(
              { err: error, providerBatch: id, provider: target.provider, externalId: state.id },
              "could not cancel an abandoned provider batch; its requests may run (and be billed) unused",
            ),
          );
        this.#options.metrics?.providerBatches.inc({ provider: target.provider, outcome: "abandoned" });
        return;
      }
      this.#options.metrics?.providerBatches.inc({ provider: target.provider, outcome: "submitted" });
      logger.info(
        { batchId, providerBatch: id, provider: target.provider, model: target.model, items: items.length },
        "economy items submitted to the provider's batch API",
      );
    } catch (error) {
      logger.warn(
        { err: error, batchId, providerBatch: id, provider: target.provider },
        "the provider refused the batch; its items fall back",
      );
      const reason =
        error instanceof GenqError ? error : new GenqError("provider_unavailable", String(error));
      await this.fallBack(id, items, {
        code: reason.code,
        message: `the provider batch was refused: ${reason.message}`,
      });
      await economy.finish(id, "failed", reason.message);
      this.#options.metrics?.providerBatches.inc({ provider: target.provider, outcome: "failed" });
    }
  }

  /**
   * Items a provider batch did not run (expired, refused, interrupted): run online
   * (`fallback: "online"`) or fail with `failure`.
   */
  async fallBack(
    providerBatchId: string,
    items: ReadonlyArray<{ jobId: string; attempt: number }>,
    failure: { code: string; message: string },
  ): Promise<void> {
    if (items.length === 0) return;
    const { economy, lifecycle, fallback } = this.#options;
    if (fallback === "online") {
      const taken = await economy.takeBackForOnline(
        providerBatchId,
        items.map((item) => item.jobId),
      );
      await this.#runOnline(taken, undefined);
      return;
    }
    await forEachLimited(items, ECONOMY_CONCURRENCY, (item) =>
      lifecycle.fail(item.jobId, failure, undefined, item.attempt).then(() => undefined),
    );
  }

  async #runOnline(items: readonly ClaimedBatchItem[], batchId: string | undefined): Promise<void> {
    try {
      await this.#options.queues.enqueueBulk(items);
    } catch (error) {
      // They are dispatched and unfinished: the reconciler enqueues them after its grace period.
      this.#options.logger.warn(
        { err: error, batchId, items: items.length },
        "could not enqueue economy items to run online",
      );
    }
  }
}

/** The provider batch request of a text job: the same request an online attempt sends. */
function toBatchRequest(
  record: JobRecord,
  input: TextJobInputType,
  model: string,
  outputTokens: number,
): ProviderBatchRequest {
  return {
    customId: record.id,
    request: {
      model,
      messages: toChatMessages(input),
      maxTokens: outputTokens,
      ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
      ...(input.topP === undefined ? {} : { topP: input.topP }),
      ...(input.stop === undefined ? {} : { stop: input.stop }),
      ...(input.providerOptions === undefined ? {} : { providerOptions: input.providerOptions }),
    },
  };
}

/** Runs `work` over `items`, at most `limit` at a time. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(runners);
}
