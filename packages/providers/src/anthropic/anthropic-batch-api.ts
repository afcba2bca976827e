import Anthropic from "@anthropic-ai/sdk";
import type { ProviderBatchApi, ProviderBatchResult, ProviderBatchState } from "../batch/provider-batch.ts";
import type { TextGenerationRequest, TextGenerationResult } from "../provider.ts";
import { mapAnthropicError } from "./map-anthropic-error.ts";

/** Anthropic's documented limit on requests per Message Batch. */
const ANTHROPIC_BATCH_MAX_REQUESTS = 100_000;

/** The HTTP status each error type comes with online, so a batch error maps as the online one would. */
const STATUS_OF_ERROR_TYPE: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

/** Options for {@link createAnthropicBatchApi}. */
export interface AnthropicBatchApiOptions {
  client: Anthropic;
  /** The provider name, for errors. */
  name: string;
  /** The Messages request body a request becomes (the same body the online call sends). */
  messageBody(request: Omit<TextGenerationRequest, "signal">): Anthropic.MessageCreateParamsNonStreaming;
  /** Maps one succeeded request's message to a result, as the online call does. */
  toResult(message: Anthropic.Message): TextGenerationResult;
}

/**
 * Anthropic's Message Batches API through the official SDK
 * (`messages.batches.create / retrieve / results / cancel`): each request is a
 * Messages body under its `custom_id`; results stream back as JSONL once the
 * batch's `processing_status` is `ended`.
 */
export function createAnthropicBatchApi(options: AnthropicBatchApiOptions): ProviderBatchApi {
  const { client, name } = options;

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw mapAnthropicError(error, name);
    }
  }

  return {
    maxRequests: ANTHROPIC_BATCH_MAX_REQUESTS,

    async submit(requests, submitOptions = {}) {
      const batch = await call(() =>
        client.messages.batches.create(
          {
            requests: requests.map(({ customId, request }) => ({
              custom_id: customId,
              params: options.messageBody(request),
            })),
          },
          { signal: submitOptions.signal ?? null },
        ),
      );
      return toState(batch);
    },

    async retrieve(id, retrieveOptions = {}) {
      return toState(
        await call(() =>
          client.messages.batches.retrieve(id, {}, { signal: retrieveOptions.signal ?? null }),
        ),
      );
    },

    async cancel(id, cancelOptions = {}) {
      return toState(
        await call(() => client.messages.batches.cancel(id, {}, { signal: cancelOptions.signal ?? null })),
      );
    },

    async *results(id, resultOptions = {}): AsyncGenerator<ProviderBatchResult> {
      const lines = await call(() =>
        client.messages.batches.results(id, {}, { signal: resultOptions.signal ?? null }),
      );
      for await (const line of lines) yield toResult(line);
    },
  };

  function toResult(line: Anthropic.Messages.Batches.MessageBatchIndividualResponse): ProviderBatchResult {
    const customId = line.custom_id;
    const result = line.result;
    switch (result.type) {
      case "succeeded":
        return { customId, kind: "succeeded", result: options.toResult(result.message) };
      case "errored": {
        const body = result.error as unknown as { error?: { type?: string; message?: string } };
        const type = body.error?.type ?? "api_error";
        const apiError = Anthropic.APIError.generate(
          STATUS_OF_ERROR_TYPE[type] ?? 500,
          body,
          body.error?.message,
          new Headers(),
        );
        return { customId, kind: "errored", error: mapAnthropicError(apiError, name) };
      }
      case "canceled":
        return { customId, kind: "unfinished", reason: "canceled" };
      case "expired":
        return { customId, kind: "unfinished", reason: "expired" };
    }
  }
}

function toState(batch: Anthropic.Messages.Batches.MessageBatch): ProviderBatchState {
  switch (batch.processing_status) {
    case "in_progress":
      return { id: batch.id, status: "running" };
    case "canceling":
      return { id: batch.id, status: "canceling" };
    case "ended": {
      const counts = batch.request_counts;
      const outcome =
        batch.cancel_initiated_at !== null && batch.cancel_initiated_at !== undefined
          ? "canceled"
          : counts.expired > 0
            ? "expired"
            : "completed";
      return { id: batch.id, status: "ended", outcome };
    }
  }
}
