import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import {
  type Candidate,
  type Content,
  type GenerateContentConfig,
  type GenerateContentResponse,
  type GenerateContentResponseUsageMetadata,
  GoogleGenAI,
  type ImageConfig,
  Modality,
  type Part,
} from "@google/genai";
import { canceledIfAborted, resolveModelOrThrow } from "../adapter-support.ts";
import { allowedProviderOptions, DEFAULT_MAX_OUTPUT_TOKENS } from "../allowed-provider-options.ts";
import { detectImageMediaType } from "../detect-image-media-type.ts";
import { estimateTokens } from "../estimate-tokens.ts";
import type {
  ImageGenerationRequest,
  ImageGenerationResult,
  Provider,
  TextGenerationRequest,
  TextStreamPart,
} from "../provider.ts";
import { MAX_LISTED_MODELS } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { createGeminiBatchApi } from "./gemini-batch-api.ts";
import { mapGeminiError } from "./map-gemini-error.ts";

/** Options for {@link createGeminiProvider}. */
export interface GeminiProviderOptions {
  /**
   * The provider name: the key of its `providerOptions`, its name in errors,
   * usage and prices. Default `gemini`.
   */
  name?: string;
  /** A Gemini API key (Google AI Studio), sent as `x-goog-api-key`. */
  apiKey: string;
  /**
   * Default `https://generativelanguage.googleapis.com`. The SDK appends the API
   * version (`/v1beta`), so give the origin (and any path prefix of a proxy), not `/v1beta`.
   */
  baseURL?: string;
  /** The model used when a text request names none. */
  defaultModel?: string;
  /** The model used when an image request names none. Default `gemini-2.5-flash-image`. */
  defaultImageModel?: string;
  /**
   * Per-request timeout in milliseconds, covering the whole call including a
   * streamed body. The SDK sets none by default (Google bounds requests at 10
   * minutes, 20 for streams).
   */
  timeoutMs?: number;
  defaultHeaders?: Record<string, string>;
}

const DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com";
const DEFAULT_IMAGE_MODEL = "gemini-2.5-flash-image";

/**
 * `GenerateContentConfig` keys the adapter owns: the abort signal comes from the
 * request, and per-call `httpOptions` could re-enable SDK retries or redirect the
 * call, so neither is taken from `providerOptions`.
 */
const RESERVED_CONFIG_KEYS = new Set(["abortSignal", "httpOptions"]);

/**
 * Switches that keep one call one HTTP request. Both are SDK-side loops: automatic
 * function calling re-calls the model after running callable tools, and automatic
 * continuation (on by default) resumes an interrupted answer with follow-up
 * requests, including re-sending a stream that dropped. Neither is sent to Google.
 */
const ONE_REQUEST_PER_CALL = {
  automaticFunctionCalling: { disable: true },
  automaticContinuation: false,
} as const satisfies GenerateContentConfig;

/** Finish reasons that mean a safety or policy system stopped the answer. */
const CONTENT_FILTER_REASONS = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
  "IMAGE_RECITATION",
]);

/**
 * A {@link Provider} for the Gemini API on Google's `@google/genai` SDK.
 *
 * Every call is exactly one HTTP request: SDK retries are off (`retryOptions`
 * with one attempt), as are automatic function calling and automatic
 * continuation. Configuration comes from the options only: the Gemini API
 * (never Vertex AI), an explicit base URL and key, so `GOOGLE_*`/`GEMINI_*`
 * environment variables have no effect. Failures come out as {@link ProviderError}.
 *
 * Images are made with `generateContent` on an image model (Imagen's
 * `generateImages` is Vertex-only and deprecated), one request per image, since
 * Gemini image models do not accept `candidateCount` above 1.
 * Allow-listed `providerOptions[name]` fields are passed through into
 * `GenerateContentConfig` (`thinkingConfig`, `safetySettings`, `topK`, `seed`, ...);
 * any other fails the call before it is sent.
 */
export function createGeminiProvider(options: GeminiProviderOptions): Provider {
  const name = options.name ?? "gemini";
  if (typeof options.apiKey !== "string" || options.apiKey === "") {
    throw new TypeError(`provider "${name}": apiKey must be a non-empty string`);
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new RangeError(`provider "${name}": timeoutMs must be a positive number`);
  }
  const defaultImageModel = options.defaultImageModel ?? DEFAULT_IMAGE_MODEL;
  const client = new GoogleGenAI({
    apiKey: options.apiKey,
    // Explicit, so GOOGLE_GENAI_USE_VERTEXAI / GOOGLE_GENAI_USE_ENTERPRISE are not consulted.
    vertexai: false,
    httpOptions: {
      // Explicit, so neither GOOGLE_GEMINI_BASE_URL nor a process-wide
      // setDefaultBaseUrls() can redirect this provider's calls.
      baseUrl: options.baseURL ?? DEFAULT_BASE_URL,
      // The router owns retries (backoff, fallback, breaker); a hidden SDK retry
      // would multiply attempts and hide failures from it.
      retryOptions: { attempts: 1 },
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      ...(options.defaultHeaders === undefined ? {} : { headers: options.defaultHeaders }),
    },
  });

  function resolveModel(model: string, fallback: string | undefined): string {
    return resolveModelOrThrow(name, model, fallback);
  }

  /**
   * Maps a failure. Anything that ends a call whose signal has aborted is
   * `canceled`; any other abort can only be the SDK's own timer (`timeoutMs`),
   * since the adapter hands the SDK no other signal.
   */
  function toProviderError(error: unknown, signal: AbortSignal | undefined): ProviderError {
    const canceled = canceledIfAborted(name, error, signal);
    if (canceled !== undefined) return canceled;
    const mapped = mapGeminiError(error, name);
    if (mapped.code === "canceled" && !(error instanceof ProviderError)) {
      return new ProviderError(
        "timeout",
        `${name}: the request timed out after ${options.timeoutMs ?? "?"} ms`,
        {
          provider: name,
          cause: error,
        },
      );
    }
    return mapped;
  }

  /** The `providerOptions[name]` fields that may go into the SDK config: allow-listed ones only. */
  function passThroughConfig(
    providerOptions: TextGenerationRequest["providerOptions"],
    capability: "text" | "image",
  ): GenerateContentConfig {
    const config: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(
      allowedProviderOptions(name, "gemini", capability, providerOptions),
    )) {
      if (!RESERVED_CONFIG_KEYS.has(key)) config[key] = value;
    }
    // The SDK validates and converts the config field by field; unknown keys are dropped.
    return config as GenerateContentConfig;
  }

  function textParameters(request: TextGenerationRequest) {
    const model = resolveModel(request.model, options.defaultModel);
    const systemMessages = request.messages.filter((message) => message.role === "system");
    const contents = request.messages.filter((message) => message.role !== "system").map(toGeminiContent);
    if (contents.length === 0) {
      // Google answers 400 for an empty `contents`; failing here saves the call.
      throw new ProviderError("invalid_request", `${name}: the request has no user or assistant message`, {
        provider: name,
      });
    }
    const config: GenerateContentConfig = {
      ...passThroughConfig(request.providerOptions, "text"),
      ...(systemMessages.length === 0
        ? {}
        : { systemInstruction: { parts: systemMessages.map((message) => ({ text: message.content })) } }),
      // Always a cap: thoughts and answer together never exceed what was reserved.
      maxOutputTokens: request.maxTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.topP === undefined ? {} : { topP: request.topP }),
      ...(request.stop === undefined ? {} : { stopSequences: request.stop }),
      ...ONE_REQUEST_PER_CALL,
      ...(request.signal === undefined ? {} : { abortSignal: request.signal }),
    };
    return { model, contents, config };
  }

  /** Throws `content_filtered` when Google refused the prompt itself (no candidates). */
  function assertPromptNotBlocked(response: GenerateContentResponse): void {
    const blockReason = response.promptFeedback?.blockReason;
    if (blockReason === undefined) return;
    const detail = response.promptFeedback?.blockReasonMessage;
    throw new ProviderError(
      "content_filtered",
      `${name}: the prompt was blocked (${blockReason})${detail ? `: ${detail}` : ""}`,
      { provider: name, ...(response.responseId ? { requestId: response.responseId } : {}) },
    );
  }

  const batches = createGeminiBatchApi({
    client,
    name,
    textParameters,
    toResult(response, model) {
      const candidate = response.candidates?.[0];
      const parts = candidate?.content?.parts ?? [];
      const text = parts.map(visibleText).join("");
      return {
        text,
        finishReason: mapFinishReason(candidate?.finishReason, hasFunctionCall(parts)),
        usage: toTokenUsage(response.usageMetadata) ?? { inputTokens: 0, outputTokens: 0 },
        model: response.modelVersion || model.replace(/^models\//, ""),
        ...(response.responseId ? { providerRequestId: response.responseId } : {}),
      };
    },
  });

  return {
    name,
    ...(options.defaultModel === undefined ? {} : { defaultModel: options.defaultModel }),
    batches,

    async generateText(request) {
      try {
        const parameters = textParameters(request);
        const response = await client.models.generateContent(parameters);
        assertPromptNotBlocked(response);
        const candidate = response.candidates?.[0];
        if (candidate === undefined) {
          throw new ProviderError("provider_unavailable", `${name}: the response had no candidates`, {
            provider: name,
            ...(response.responseId ? { requestId: response.responseId } : {}),
          });
        }
        const parts = candidate.content?.parts ?? [];
        const text = parts.map(visibleText).join("");
        return {
          text,
          finishReason: mapFinishReason(candidate.finishReason, hasFunctionCall(parts)),
          usage: toTokenUsage(response.usageMetadata) ?? estimateUsage(request.messages, text),
          model: response.modelVersion || parameters.model,
          ...(response.responseId ? { providerRequestId: response.responseId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async *streamText(request): AsyncGenerator<TextStreamPart> {
      let text = "";
      try {
        const parameters = textParameters(request);
        const stream = await client.models.generateContentStream(parameters);

        let finishReason: Candidate["finishReason"];
        let calledFunction = false;
        let usage: TokenUsage | undefined;
        let model = parameters.model;
        let responseId: string | undefined;
        for await (const chunk of stream) {
          responseId ??= chunk.responseId;
          if (chunk.modelVersion) model = chunk.modelVersion;
          assertPromptNotBlocked(chunk);
          const candidate = chunk.candidates?.[0];
          const parts = candidate?.content?.parts ?? [];
          calledFunction ||= hasFunctionCall(parts);
          const delta = parts.map(visibleText).join("");
          if (delta) {
            text += delta;
            yield { type: "text-delta", delta };
          }
          if (candidate?.finishReason) finishReason = candidate.finishReason;
          // Each chunk carries the usage so far; the last one is complete.
          usage = toTokenUsage(chunk.usageMetadata) ?? usage;
        }
        if (request.signal?.aborted) throw request.signal.reason;
        if (finishReason === undefined) {
          throw new ProviderError("provider_unavailable", `${name}: the stream ended before it finished`, {
            provider: name,
            ...(responseId ? { requestId: responseId } : {}),
          });
        }
        yield {
          type: "finish",
          finishReason: mapFinishReason(finishReason, calledFunction),
          usage: usage ?? estimateUsage(request.messages, text),
          model,
          ...(responseId ? { providerRequestId: responseId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async generateImage(request: ImageGenerationRequest): Promise<ImageGenerationResult> {
      try {
        const model = resolveModel(request.model, defaultImageModel);
        if (!(Number.isInteger(request.n) && request.n >= 1)) {
          throw new ProviderError("invalid_request", `${name}: n must be a positive integer`, {
            provider: name,
          });
        }
        const passThrough = passThroughConfig(request.providerOptions, "image");
        const imageConfig = { ...passThrough.imageConfig, ...toImageConfig(request.size, request.quality) };
        const config: GenerateContentConfig = {
          // Only images: a text part would be discarded anyway, and costs output tokens.
          responseModalities: [Modality.IMAGE],
          ...passThrough,
          ...(Object.keys(imageConfig).length === 0 ? {} : { imageConfig }),
          ...ONE_REQUEST_PER_CALL,
          ...(request.signal === undefined ? {} : { abortSignal: request.signal }),
        };
        const images: ImageGenerationResult["images"] = [];
        let inputTokens = 0;
        let outputTokens = 0;
        let firstResponseId: string | undefined;
        // One request per image, in sequence: the first failure stops the rest, so
        // a refused prompt or an exhausted key is not hit n times.
        for (let call = 0; call < request.n && images.length < request.n; call++) {
          const response = await client.models.generateContent({ model, contents: request.prompt, config });
          firstResponseId ??= response.responseId;
          assertPromptNotBlocked(response);
          const usage = toTokenUsage(response.usageMetadata);
          inputTokens += usage?.inputTokens ?? 0;
          outputTokens += usage?.outputTokens ?? 0;
          const received = (response.candidates ?? []).flatMap((candidate) =>
            (candidate.content?.parts ?? []).flatMap(toImage),
          );
          if (received.length === 0) throw noImageError(response);
          images.push(...received);
        }
        return {
          images,
          usage: { images: images.length, inputTokens, outputTokens },
          model,
          ...(firstResponseId ? { providerRequestId: firstResponseId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async listModels(listOptions) {
      const ids: string[] = [];
      try {
        const pager = await client.models.list({
          config: {
            pageSize: 100,
            ...(listOptions?.signal === undefined ? {} : { abortSignal: listOptions.signal }),
          },
        });
        for await (const model of pager) {
          if (model.name !== undefined) ids.push(model.name.replace(/^models\//, ""));
          if (ids.length >= MAX_LISTED_MODELS) break;
        }
      } catch (error) {
        throw toProviderError(error, listOptions?.signal);
      }
      return ids;
    },
    async healthCheck(healthOptions) {
      const started = performance.now();
      try {
        await client.models.list({
          config: {
            pageSize: 1,
            ...(healthOptions?.signal === undefined ? {} : { abortSignal: healthOptions.signal }),
          },
        });
        return { ok: true, latencyMs: Math.round(performance.now() - started) };
      } catch (error) {
        const mapped = toProviderError(error, healthOptions?.signal);
        if (mapped.code === "canceled") throw mapped;
        return {
          ok: false,
          latencyMs: Math.round(performance.now() - started),
          message: `${mapped.code}: ${mapped.message}`,
        };
      }
    },
  };

  /** Why a response held no image: a safety stop is `content_filtered`, anything else may pass on retry. */
  function noImageError(response: GenerateContentResponse): ProviderError {
    const candidate = response.candidates?.[0];
    const reason = candidate?.finishReason;
    const requestId = response.responseId ? { requestId: response.responseId } : {};
    if (reason !== undefined && CONTENT_FILTER_REASONS.has(reason)) {
      return new ProviderError("content_filtered", `${name}: the image was blocked (${reason})`, {
        provider: name,
        ...requestId,
      });
    }
    const said = (candidate?.content?.parts ?? []).map(visibleText).join("").trim();
    return new ProviderError(
      "provider_unavailable",
      `${name}: the response had no image (${reason ?? "no finish reason"})${said ? `: ${said}` : ""}`,
      { provider: name, ...requestId },
    );
  }
}

function toGeminiContent(message: ChatMessage): Content {
  // Gemini calls the assistant "model"; system messages go to systemInstruction.
  return { role: message.role === "assistant" ? "model" : "user", parts: [{ text: message.content }] };
}

/** The answer text of a part; thought summaries (`includeThoughts`) are not the answer. */
function visibleText(part: Part): string {
  return part.thought || typeof part.text !== "string" ? "" : part.text;
}

function hasFunctionCall(parts: Part[]): boolean {
  return parts.some((part) => part.functionCall !== undefined);
}

/** A generated image from an `inlineData` part; thought images (drafts) are skipped. */
function toImage(part: Part): ImageGenerationResult["images"] {
  const data = part.inlineData?.data;
  if (part.thought || !data) return [];
  const bytes = Uint8Array.from(Buffer.from(data, "base64"));
  const declared = part.inlineData?.mimeType;
  const mediaType = declared?.startsWith("image/") ? declared : (detectImageMediaType(bytes) ?? "image/png");
  return [{ bytes, mediaType }];
}

/**
 * Gemini's finish reasons in genq's terms. Gemini reports a function call as
 * STOP, so the parts decide `tool_calls`; anything new is `other`.
 */
function mapFinishReason(reason: Candidate["finishReason"], calledFunction: boolean): FinishReason {
  if (reason === "STOP") return calledFunction ? "tool_calls" : "stop";
  if (reason === "MAX_TOKENS") return "length";
  if (reason !== undefined && CONTENT_FILTER_REASONS.has(reason)) return "content_filter";
  return "other";
}

/**
 * Gemini usage in genq's terms, which follow OpenAI's: cached tokens are part of
 * the input, and thinking tokens part of the output. Gemini counts
 * `candidatesTokenCount` without the thoughts, which are billed as output too;
 * tool-use prompt tokens (search results fed back in) are billed as input.
 */
function toTokenUsage(usage: GenerateContentResponseUsageMetadata | undefined): TokenUsage | undefined {
  if (usage === undefined || usage.promptTokenCount === undefined) return undefined;
  const thoughts = usage.thoughtsTokenCount;
  return {
    inputTokens: usage.promptTokenCount + (usage.toolUsePromptTokenCount ?? 0),
    outputTokens: (usage.candidatesTokenCount ?? 0) + (thoughts ?? 0),
    ...(usage.cachedContentTokenCount === undefined
      ? {}
      : { cachedInputTokens: usage.cachedContentTokenCount }),
    ...(thoughts === undefined ? {} : { reasoningTokens: thoughts }),
  };
}

/** Usage for a response that reports none: an estimate still charges something for real work. */
function estimateUsage(messages: ChatMessage[], text: string): TokenUsage {
  return {
    inputTokens: messages.reduce((sum, message) => sum + estimateTokens(message.content), 0),
    outputTokens: estimateTokens(text),
  };
}

/** Aspect ratios Gemini image models accept. */
const ASPECT_RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"] as const;
/** Output sizes of the image models that offer a choice (`gemini-3-pro-image-preview`). */
const IMAGE_SIZES = new Set(["1K", "2K", "4K"]);

/**
 * The normalized `size` and `quality` as Gemini's `imageConfig`. Gemini sizes
 * images by aspect ratio: a `"W:H"` size is sent as is (the API validates it), and
 * a pixel size such as `1536x1024` (OpenAI's form, e.g. on a fallback path) becomes
 * the nearest ratio Gemini offers (`3:2`). `quality` is used only when it is one of
 * Gemini's sizes (`1K`, `2K`, `4K`), so an OpenAI-style `high` does not fail the job.
 */
function toImageConfig(size: string | undefined, quality: string | undefined): ImageConfig {
  const config: ImageConfig = {};
  const trimmed = size?.trim();
  if (trimmed !== undefined && trimmed !== "") {
    const pixels = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(trimmed);
    config.aspectRatio =
      pixels?.[1] !== undefined && pixels[2] !== undefined
        ? nearestAspectRatio(Number(pixels[1]), Number(pixels[2]))
        : trimmed;
  }
  const imageSize = quality?.trim().toUpperCase();
  if (imageSize !== undefined && IMAGE_SIZES.has(imageSize)) config.imageSize = imageSize;
  return config;
}

/** The offered aspect ratio closest to width:height, compared on a log scale so 2:1 and 1:2 are equally far from 1:1. */
function nearestAspectRatio(width: number, height: number): string {
  if (!(width > 0 && height > 0)) return "1:1";
  const target = Math.log(width / height);
  let best: string = ASPECT_RATIOS[0];
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const ratio of ASPECT_RATIOS) {
    const [ratioWidth, ratioHeight] = ratio.split(":").map(Number);
    const distance = Math.abs(Math.log((ratioWidth ?? 1) / (ratioHeight ?? 1)) - target);
    if (distance < bestDistance) {
      best = ratio;
      bestDistance = distance;
    }
  }
  return best;
}
