import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import type { ProviderBatchApi } from "./batch/provider-batch.ts";

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
  /** The provider's asynchronous batch API (the economy tier); absent when it has none. */
  readonly batches?: ProviderBatchApi;
}
