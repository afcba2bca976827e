import {
  ApiError,
  type BatchJob,
  type GenerateContentConfig,
  type GenerateContentResponse,
  type GoogleGenAI,
  type InlinedRequest,
} from "@google/genai";
import {
  PROVIDER_BATCH_TAG,
  type ProviderBatchApi,
  type ProviderBatchResult,
  type ProviderBatchState,
} from "../batch/provider-batch.ts";
import type { TextGenerationRequest, TextGenerationResult } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { mapGeminiError } from "./map-gemini-error.ts";

/** Inlined requests per Gemini batch: the API caps an inlined batch's size (20 MB); stay well under it. */
const GEMINI_BATCH_MAX_REQUESTS = 5_000;

/** Options for {@link createGeminiBatchApi}. */
export interface GeminiBatchApiOptions {
  client: GoogleGenAI;
  /** The provider name, for errors. */
  name: string;
  /** The model, contents and config a request becomes (the same the online call sends). */
  textParameters(request: Omit<TextGenerationRequest, "signal">): {
    model: string;
    contents: InlinedRequest["contents"];
    config: GenerateContentConfig;
  };
  /** Maps one inlined response to a result, as the online call does. */
  toResult(response: GenerateContentResponse, model: string): TextGenerationResult;
}

/**
 * Gemini's batch mode through `@google/genai` (`batches.create` with inlined
 * requests, `batches.get`, `batches.cancel`): one model per batch; each request
 * carries its `customId` as `metadata.key`, which comes back on its inlined response.
 */
/** How many batches {@link ProviderBatchApi.findSubmitted} looks through. */
const FIND_SUBMITTED_SCAN = 500;

export function createGeminiBatchApi(options: GeminiBatchApiOptions): ProviderBatchApi {
  const { client, name } = options;

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw mapGeminiError(error, name);
    }
  }

  return {
    maxRequests: GEMINI_BATCH_MAX_REQUESTS,

    async submit(requests, submitOptions = {}) {
      const first = requests[0];
      if (first === undefined)
        throw new ProviderError("invalid_request", `${name}: an empty batch`, { provider: name });
      const model = options.textParameters(first.request).model;
      const inlinedRequests = requests.map(({ customId, request }): InlinedRequest => {
        const parameters = options.textParameters(request);
        if (parameters.model !== model)
          throw new ProviderError("invalid_request", `${name}: a batch runs one model`, { provider: name });
        const { automaticFunctionCalling: _afc, ...config } = parameters.config as GenerateContentConfig & {
          automaticFunctionCalling?: unknown;
        };
        return { contents: parameters.contents, config, metadata: { key: customId } };
      });
      const batch = await call(() =>
        client.batches.create({
          model,
          src: inlinedRequests,
          config: {
            displayName: submitOptions.metadata?.[PROVIDER_BATCH_TAG] ?? "genq",
            ...(submitOptions.signal === undefined ? {} : { abortSignal: submitOptions.signal }),
          },
        }),
      );
      return toState(batch);
    },

    async retrieve(id, retrieveOptions = {}) {
      return toState(
        await call(() =>
          client.batches.get({
            name: id,
            ...(retrieveOptions.signal === undefined
              ? {}
              : { config: { abortSignal: retrieveOptions.signal } }),
          }),
        ),
      );
    },

    async findSubmitted(tag, findOptions = {}) {
      // Submissions carry the tag as their display name. Every page inside `call`: a later
      // page's failure is a ProviderError too.
      return call(async () => {
        const pager = await client.batches.list({
          config: {
            pageSize: 100,
            ...(findOptions.signal === undefined ? {} : { abortSignal: findOptions.signal }),
          },
        });
        let seen = 0;
        for await (const batch of pager) {
          if (batch.displayName === tag) return toState(batch);
          seen += 1;
          if (seen >= FIND_SUBMITTED_SCAN) return undefined;
        }
        return undefined;
      });
    },

    async cancel(id, cancelOptions = {}) {
      await call(() =>
        client.batches.cancel({
          name: id,
          ...(cancelOptions.signal === undefined ? {} : { config: { abortSignal: cancelOptions.signal } }),
        }),
      );
      return { id, status: "canceling" };
    },

    async *results(id, resultOptions = {}): AsyncGenerator<ProviderBatchResult> {
      const batch = await call(() =>
        client.batches.get({
          name: id,
          ...(resultOptions.signal === undefined ? {} : { config: { abortSignal: resultOptions.signal } }),
        }),
      );
      for (const inlined of batch.dest?.inlinedResponses ?? []) {
        const customId = (inlined.metadata as { key?: unknown } | undefined)?.key;
        if (typeof customId !== "string") continue;
        if (inlined.response !== undefined) {
          yield {
            customId,
            kind: "succeeded",
            result: options.toResult(inlined.response, batch.model ?? ""),
          };
          continue;
        }
        const error = inlined.error as { code?: number; message?: string; status?: string } | undefined;
        const apiError = new ApiError({
          status: error?.code ?? 500,
          message: JSON.stringify({ error: error ?? { message: "no response" } }),
        });
        yield { customId, kind: "errored", error: mapGeminiError(apiError, name) };
      }
    },
  };
}

function toState(batch: BatchJob): ProviderBatchState {
  const id = batch.name ?? "";
  switch (batch.state) {
    case "JOB_STATE_SUCCEEDED":
      return { id, status: "ended", outcome: "completed" };
    case "JOB_STATE_FAILED":
      return {
        id,
        status: "ended",
        outcome: "failed",
        ...(batch.error?.message ? { message: batch.error.message } : {}),
      };
    case "JOB_STATE_CANCELLED":
      return { id, status: "ended", outcome: "canceled" };
    case "JOB_STATE_EXPIRED":
      return { id, status: "ended", outcome: "expired" };
    case "JOB_STATE_CANCELLING":
      return { id, status: "canceling" };
    default:
      return { id, status: "running" };
  }
}
