import type { TextGenerationRequest, TextGenerationResult } from "../provider.ts";
import type { ProviderError } from "../provider-error.ts";

/** One request of a provider batch: a text generation, named by the caller's `customId`. */
export interface ProviderBatchRequest {
  /** The caller's id for the request (genq uses the job id); unique within a batch. */
  customId: string;
  request: Omit<TextGenerationRequest, "signal">;
}

/** Where a provider batch is, in terms every provider shares. */
export interface ProviderBatchState {
  /** The provider's batch id. */
  id: string;
  /**
   * `running`: the provider still works on it (validating, in progress, finalizing);
   * `canceling`: a cancel is under way; `ended`: its results can be read.
   */
  status: "running" | "canceling" | "ended";
  /**
   * How an ended batch ended: `completed` (every request ran), `expired` (the window
   * passed; requests that had not run are reported `unfinished`), `canceled`, or
   * `failed` (the provider refused the batch; no request ran).
   */
  outcome?: "completed" | "expired" | "canceled" | "failed";
  /** Why a batch failed, as the provider said it. */
  message?: string;
}

/** What became of one request of an ended batch. */
export type ProviderBatchResult =
  | { customId: string; kind: "succeeded"; result: TextGenerationResult }
  | { customId: string; kind: "errored"; error: ProviderError }
  /** Never ran: the batch expired or was canceled first. */
  | { customId: string; kind: "unfinished"; reason: "expired" | "canceled" };

/**
 * A provider's asynchronous batch API (OpenAI Batch, Anthropic Message Batches,
 * Gemini batch mode): the same requests at the provider's batch price, answered
 * within its window (24 hours) instead of at once. An adapter has one when the
 * provider offers it; calls are single HTTP attempts that throw `ProviderError`.
 */
export interface ProviderBatchApi {
  /** The most requests one batch may carry. */
  readonly maxRequests: number;
  /** Submits text requests for one model as one provider batch. */
  submit(
    requests: readonly ProviderBatchRequest[],
    options?: { metadata?: Record<string, string>; signal?: AbortSignal },
  ): Promise<ProviderBatchState>;
  retrieve(id: string, options?: { signal?: AbortSignal }): Promise<ProviderBatchState>;
  /** The result of every request of an ended batch (requests it never ran come as `unfinished`). */
  results(id: string, options?: { signal?: AbortSignal }): AsyncIterable<ProviderBatchResult>;
  /** Asks the provider to cancel; requests that finished meanwhile keep their results. */
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<ProviderBatchState>;
}
