import type { JobCompletion, LeasedProviderBatch, OnlineCost, ProviderCallRecord } from "@genq/db";
import type {
  ProviderBatchApi,
  ProviderBatchResult,
  ProviderBatchState,
  TextGenerationResult,
} from "@genq/providers";
import { chargedTextTokens } from "@genq/quota";
import type { ResolvedEconomyOptions } from "./economy-options.ts";
import { ECONOMY_CONCURRENCY, type EconomySubmitter, forEachLimited } from "./economy-submitter.ts";
import { batchApiOf } from "./economy-targets.ts";

/** How many failed lookups of an interrupted submission's batch before its items fall back. */
export const MAX_FAILED_LOOKUPS = 5;

/**
 * Polls one leased provider batch and, once it ended, hands every item on through
 * the lifecycle: results complete their items (usage and cost at the provider's
 * batch price, the quota hold settled from the reported usage), per-request errors
 * fail them (genq's taxonomy), requests a cancel stopped are canceled, and requests
 * the provider never ran (expiry, a refused batch) fall back.
 */
export class EconomyCollector {
  readonly #options: ResolvedEconomyOptions;
  readonly #submitter: EconomySubmitter;

  constructor(options: ResolvedEconomyOptions, submitter: EconomySubmitter) {
    this.#options = options;
    this.#submitter = submitter;
  }

  async poll(leased: LeasedProviderBatch): Promise<void> {
    const { economy, router } = this.#options;
    if (leased.status === "submitting" || leased.externalId === null) {
      // Its submitter died before the provider's answer was recorded. If the provider took
      // the batch (found by its tag), it is polled as any other; else its items fall back.
      const found = await this.#findSubmitted(leased);
      if (found !== undefined) {
        await economy.markSubmitted(leased.id, found.id, 0);
        this.#options.logger.warn(
          { providerBatch: leased.id, provider: leased.provider, externalId: found.id },
          "found the provider's batch of an interrupted submission; polling it",
        );
        this.#options.metrics?.providerBatches.inc({ provider: leased.provider, outcome: "recovered" });
        return;
      }
      const items = await economy.items(leased.id);
      await this.#submitter.fallBack(leased.id, items, {
        code: "provider_unavailable",
        message: "the submission of the provider batch was interrupted",
      });
      await economy.finish(leased.id, "failed", "submission interrupted");
      this.#options.metrics?.providerBatches.inc({ provider: leased.provider, outcome: "interrupted" });
      return;
    }
    const api = batchApiOf(router.config(), leased.provider, leased.keyId);
    if (api === undefined) {
      throw new Error(
        `provider ${leased.provider} (key ${leased.keyId}) has no batch API in the current configuration`,
      );
    }
    let state = await api.retrieve(leased.externalId);
    if (leased.batchCancelRequested && !leased.cancelSent) {
      // Its genq batch was canceled: stop the provider's batch (unless it already
      // ended) and flag the items, so those it never ran are canceled.
      if (state.status === "running") state = await api.cancel(leased.externalId);
      await economy.markCancelSent(leased.id);
    }
    if (state.status !== "ended") {
      await economy.scheduleNextPoll(leased.id, this.backoff(leased.polls), state.status);
      return;
    }
    await this.#collect(leased, leased.externalId, api, state);
  }

  /**
   * The provider's batch of an interrupted submission, by its tag. A lookup that fails is
   * tried again later (the scheduler backs off); after {@link MAX_FAILED_LOOKUPS} the batch
   * counts as not found, so its items fall back instead of waiting on a provider's list
   * endpoint (or a key that may submit but not list) for ever.
   */
  async #findSubmitted(leased: LeasedProviderBatch): Promise<ProviderBatchState | undefined> {
    const api = batchApiOf(this.#options.router.config(), leased.provider, leased.keyId);
    try {
      return await api?.findSubmitted?.(leased.id);
    } catch (error) {
      if (leased.polls + 1 < MAX_FAILED_LOOKUPS) throw error;
      this.#options.logger.warn(
        { err: error, providerBatch: leased.id, provider: leased.provider, lookups: leased.polls + 1 },
        "could not look for the provider's batch of an interrupted submission; its items fall back",
      );
      return undefined;
    }
  }

  /** The wait before the next poll of a provider batch polled `polls` times. */
  backoff(polls: number): number {
    const { pollBaseMs, pollMaxMs } = this.#options;
    return Math.min(pollMaxMs, pollBaseMs * 2 ** Math.min(polls, 20));
  }

  async #collect(
    leased: LeasedProviderBatch,
    externalId: string,
    api: ProviderBatchApi,
    state: ProviderBatchState,
  ): Promise<void> {
    const { economy, lifecycle } = this.#options;
    const attempts = new Map((await economy.items(leased.id)).map((item) => [item.jobId, item.attempt]));
    const unfinished: Array<{ jobId: string; attempt: number; reason: "expired" | "canceled" }> = [];
    const onlineCosts: OnlineCost[] = [];
    const endedAt = new Date();
    const itemOutcomes = { succeeded: 0, errored: 0, unfinished: 0 };
    let pending: ProviderBatchResult[] = [];
    const flush = async () => {
      const chunk = pending;
      pending = [];
      // Completions first, and their online costs noted before any of them completes.
      const completions = new Map<string, { completion: JobCompletion; online: OnlineCost }>();
      for (const result of chunk) {
        const attempt = attempts.get(result.customId);
        if (result.kind !== "succeeded" || attempt === undefined) continue;
        completions.set(
          result.customId,
          this.#completion(leased, result.customId, attempt, result.result, endedAt),
        );
      }
      await economy.noteOnlineCosts(
        leased.id,
        [...completions.values()].map((completion) => completion.online),
      );
      await forEachLimited(chunk, ECONOMY_CONCURRENCY, async (result) => {
        const attempt = attempts.get(result.customId);
        if (attempt === undefined) return;
        attempts.delete(result.customId);
        itemOutcomes[result.kind] += 1;
        switch (result.kind) {
          case "succeeded": {
            const completion = completions.get(result.customId);
            if (completion === undefined) return;
            if (await lifecycle.complete(completion.completion)) {
              onlineCosts.push(completion.online);
              this.#countCompleted(completion.completion);
            }
            return;
          }
          case "errored":
            await lifecycle.fail(
              result.customId,
              { code: result.error.code, message: result.error.message },
              [
                call(leased, endedAt, {
                  outcome: "error",
                  errorCode: result.error.code,
                  errorMessage: result.error.message,
                }),
              ],
              attempt,
            );
            return;
          case "unfinished":
            unfinished.push({ jobId: result.customId, attempt, reason: result.reason });
            return;
        }
      });
    };
    for await (const result of api.results(externalId)) {
      pending.push(result);
      if (pending.length >= 1_000) await flush();
    }
    await flush();
    // Requests the provider reported nothing for never ran (a refused batch reports none).
    const reason = state.outcome === "canceled" ? "canceled" : "expired";
    for (const [jobId, attempt] of attempts) unfinished.push({ jobId, attempt, reason });
    await this.#settleUnfinished(leased, state, unfinished);
    await economy.recordOnlineCosts(onlineCosts);
    await economy.finish(leased.id, state.outcome ?? "completed", state.message);
    const metrics = this.#options.metrics;
    if (metrics !== undefined) {
      const { provider } = leased;
      metrics.providerBatches.inc({ provider, outcome: state.outcome ?? "completed" });
      // Requests the provider reported nothing for count as unfinished, as they are settled.
      itemOutcomes.unfinished = unfinished.length;
      for (const [outcome, count] of Object.entries(itemOutcomes))
        if (count > 0) metrics.providerBatchItems.inc({ provider, outcome }, count);
    }
  }

  /** An item the provider ran, in the provider token and cost counters as online calls are. */
  #countCompleted(completion: JobCompletion): void {
    const metrics = this.#options.metrics;
    if (metrics === undefined) return;
    const labels = { provider: completion.provider, model: completion.model };
    metrics.providerTokens.inc({ ...labels, direction: "input" }, completion.usage.inputTokens);
    metrics.providerTokens.inc({ ...labels, direction: "output" }, completion.usage.outputTokens);
    metrics.providerCost.inc(labels, completion.costMicroUsd);
  }

  async #settleUnfinished(
    leased: LeasedProviderBatch,
    state: ProviderBatchState,
    unfinished: ReadonlyArray<{ jobId: string; attempt: number; reason: "expired" | "canceled" }>,
  ): Promise<void> {
    const { lifecycle } = this.#options;
    if (leased.batchCancelRequested) {
      // Flagged when the cancel was sent: the lifecycle cancels them and releases their holds.
      await forEachLimited(unfinished, ECONOMY_CONCURRENCY, async (item) => {
        await lifecycle.cancelIfRequested(item.jobId, undefined, item.attempt);
      });
      return;
    }
    const failure =
      state.outcome === "failed"
        ? {
            code: "provider_unavailable",
            message: `the provider refused the batch: ${state.message ?? "no reason given"}`,
          }
        : { code: "timeout", message: "the provider's batch window (24 hours) ended before this item ran" };
    await this.#submitter.fallBack(leased.id, unfinished, failure);
  }

  /** A completed item: the transition's data, and what it would have cost online. */
  #completion(
    leased: LeasedProviderBatch,
    jobId: string,
    attempt: number,
    output: TextGenerationResult,
    endedAt: Date,
  ): { completion: JobCompletion; online: OnlineCost } {
    const config = this.#options.router.config();
    const priced = { provider: leased.provider, model: leased.model, usage: output.usage };
    const cost = config.prices.costMicroUsd({ ...priced, tier: "batch" }).costMicroUsd;
    const online = config.prices.costMicroUsd(priced).costMicroUsd;
    const completion: JobCompletion = {
      jobId,
      attempt,
      provider: leased.provider,
      model: leased.model,
      keyId: leased.keyId,
      usage: output.usage,
      costMicroUsd: cost,
      priceVersion: config.priceVersion,
      calls: [
        call(leased, endedAt, {
          outcome: "ok",
          inputTokens: output.usage.inputTokens,
          outputTokens: output.usage.outputTokens,
        }),
      ],
      result: {
        text: output.text,
        finishReason: output.finishReason,
        provider: leased.provider,
        model: leased.model,
        tier: "economy",
        ...(output.providerRequestId === undefined ? {} : { providerRequestId: output.providerRequestId }),
      },
      ...(this.#options.quota === undefined
        ? {}
        : { charge: { textTokens: chargedTextTokens(output.usage), images: 0, costMicroUsd: cost } }),
    };
    return { completion, online: { jobId, onlineCostMicroUsd: online } };
  }
}

/** The provider call of an economy item: one request of a provider batch (latency not known per request). */
function call(
  leased: LeasedProviderBatch,
  endedAt: Date,
  fields: Pick<ProviderCallRecord, "outcome" | "errorCode" | "errorMessage" | "inputTokens" | "outputTokens">,
): ProviderCallRecord {
  return {
    seq: 1,
    provider: leased.provider,
    model: leased.model,
    keyId: leased.keyId,
    startedAt: endedAt,
    latencyMs: 0,
    ...fields,
  };
}
