import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import type { ProviderError } from "./provider-error.ts";

/** A text generation request, normalized across providers. */
export interface TextGenerationRequest {
  /** The model id as the provider knows it. */
  model: string;
  /** The conversation; a leading `system` message is the system prompt. */
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  /** Provider-specific settings, keyed by provider name; each adapter reads only its own. */
  providerOptions?: Record<string, Record<string, unknown>>;
  /** Aborts the call (job canceled, deadline passed, worker shutting down). */
  signal?: AbortSignal;
}

/** A finished text generation. */
export interface TextGenerationResult {
  text: string;
  finishReason: FinishReason;
  usage: TokenUsage;
  /** The model that actually answered (providers may resolve aliases). */
  model: string;
  /** The provider's id for the request, for support tickets and tracing. */
  providerRequestId?: string;
}

/** One piece of a streamed text generation. */
export type TextStreamPart =
  | { type: "text-delta"; delta: string }
  | {
      type: "finish";
      finishReason: FinishReason;
      usage: TokenUsage;
      model: string;
      providerRequestId?: string;
    };

/** An image generation request, normalized across providers. */
export interface ImageGenerationRequest {
  model: string;
  prompt: string;
  n: number;
  size?: string;
  quality?: string;
  providerOptions?: Record<string, Record<string, unknown>>;
  signal?: AbortSignal;
}

/** An image sent to a provider: an upload's bytes and their media type. */
export interface ImageSource {
  bytes: Uint8Array;
  /** `image/png`, `image/jpeg` or `image/webp`. */
  mediaType: string;
}

/** An image edit request: change `image` as `prompt` says, only where `mask` is transparent. */
export interface ImageEditRequest {
  model: string;
  prompt: string;
  image: ImageSource;
  /** A PNG the size of `image`; its fully transparent pixels mark the area to edit. */
  mask?: ImageSource;
  n: number;
  size?: string;
  quality?: string;
  providerOptions?: Record<string, Record<string, unknown>>;
  signal?: AbortSignal;
}

/** An image variation request: new images in the manner of `image`, without a prompt. */
export interface ImageVariationRequest {
  model: string;
  image: ImageSource;
  n: number;
  size?: string;
  providerOptions?: Record<string, Record<string, unknown>>;
  signal?: AbortSignal;
}

/** A finished image generation: bytes, never URLs that expire. */
export interface ImageGenerationResult {
  images: Array<{ bytes: Uint8Array; mediaType: string; revisedPrompt?: string }>;
  usage: { images: number; inputTokens?: number; outputTokens?: number };
  model: string;
  providerRequestId?: string;
}

/** The outcome of a provider health check. */
export interface HealthCheckResult {
  ok: boolean;
  latencyMs: number;
  message?: string;
}

/**
 * The one interface every provider adapter implements. Adapters make exactly one
 * attempt per call (SDK retries off) and throw {@link ProviderError}; retrying,
 * fallback and rate limits belong to the caller.
 */
export interface Provider {
  /** The configured name (`openai`, `mock`, `deepseek`, ...). */
  readonly name: string;
  /**
   * The model used when a request names none (an empty `model`), and the registry's
   * fallback when its configuration has no default model for this provider.
   */
  readonly defaultModel?: string;
  generateText(request: TextGenerationRequest): Promise<TextGenerationResult>;
  streamText(request: TextGenerationRequest): AsyncIterable<TextStreamPart>;
  /** Absent when the provider cannot make images. */
  generateImage?(request: ImageGenerationRequest): Promise<ImageGenerationResult>;
  /** Absent when the provider cannot edit images. */
  editImage?(request: ImageEditRequest): Promise<ImageGenerationResult>;
  /** Absent when the provider cannot make variations of an image. */
  createImageVariation?(request: ImageVariationRequest): Promise<ImageGenerationResult>;
  healthCheck(options?: { signal?: AbortSignal }): Promise<HealthCheckResult>;
  /**
   * The model ids the provider lists for this key (at most {@link MAX_LISTED_MODELS}):
   * the admin API's key validation and model sync. Throws a `ProviderError` (an
   * invalid key is `auth_failed`). Absent when the provider has no such call.
   */
  listModels?(options?: { signal?: AbortSignal }): Promise<string[]>;
  /** The provider's asynchronous batch API (the economy tier); absent when it has none. */
  readonly batches?: ProviderBatchApi;
}

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
  /**
   * The batch submitted lately with `metadata[PROVIDER_BATCH_TAG] = tag` (genq tags each
   * submission with its provider batch row's id), if the provider lists batches with their
   * metadata: how a submission cut off after the provider accepted it, before its id was
   * recorded, is found again instead of run twice. Absent where the provider cannot say
   * (Anthropic's batches carry no metadata).
   */
  findSubmitted?(tag: string, options?: { signal?: AbortSignal }): Promise<ProviderBatchState | undefined>;
}

/** The metadata key under which genq tags a provider batch with its own id ({@link ProviderBatchApi.findSubmitted}). */
export const PROVIDER_BATCH_TAG = "genq_provider_batch";

/** How many model ids {@link Provider.listModels} returns at most. */
export const MAX_LISTED_MODELS = 1_000;
