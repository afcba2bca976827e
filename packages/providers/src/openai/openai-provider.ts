import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import {
  DownloadFailedError,
  downloadPublicUrl,
  type HostAllowlist,
  PublicTargetRefusedError,
} from "@genq/net-guard";
import OpenAI, { toFile } from "openai";
import { canceledIfAborted, resolveModelOrThrow } from "../adapter-support.ts";
import { allowedProviderOptions, DEFAULT_MAX_OUTPUT_TOKENS } from "../allowed-provider-options.ts";
import { detectImageMediaType } from "../detect-image-media-type.ts";
import { estimateTokens } from "../estimate-tokens.ts";
import type {
  ImageEditRequest,
  ImageGenerationRequest,
  ImageGenerationResult,
  ImageSource,
  ImageVariationRequest,
  Provider,
  TextGenerationRequest,
  TextStreamPart,
} from "../provider.ts";
import { MAX_LISTED_MODELS } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { mapOpenAIError } from "./map-openai-error.ts";
import { createOpenAIBatchApi } from "./openai-batch-api.ts";

/** Options for {@link createOpenAIProvider}. */
export interface OpenAIProviderOptions {
  /**
   * The provider name: the key of its `providerOptions`, its name in errors,
   * usage and prices. Use another name (`deepseek`, `ollama`, `vllm`) with
   * `baseURL` for an OpenAI-compatible endpoint. Default `openai`.
   */
  name?: string;
  apiKey: string;
  /** Default `https://api.openai.com/v1`; compatible servers need the `/v1` suffix too. */
  baseURL?: string;
  organization?: string;
  /** The model used when a request names none. */
  defaultModel?: string;
  /** Per-request timeout, in milliseconds (the SDK's default is 10 minutes). */
  timeoutMs?: number;
  /** The fetch used for API calls; inject one to proxy or record. */
  fetch?: typeof fetch;
  /**
   * How image URLs in answers (servers that send `url` instead of `b64_json`) are
   * downloaded: only public addresses unless allowlisted, no redirects, a byte cap
   * and a timeout.
   */
  imageDownload?: ImageDownloadOptions;
  defaultHeaders?: Record<string, string>;
  /**
   * Send `max_completion_tokens` instead of `max_tokens`. OpenAI's reasoning
   * models require it; most compatible servers only know `max_tokens`, hence the
   * default false. A request can override it with
   * `providerOptions[name].useMaxCompletionTokens`.
   */
  useMaxCompletionTokens?: boolean;
  /**
   * Offer OpenAI's Batch API (Files + Batches) as {@link Provider.batches}, for the
   * economy tier. OpenAI-compatible servers (Ollama, vLLM, ...) mostly have none.
   * @defaultValue false
   */
  batchApi?: boolean;
}

/** Limits on downloading the image URLs a provider answers with. */
export interface ImageDownloadOptions {
  /** Hosts that may be private or loopback anyway (development, tests). Default none. */
  allowlist?: HostAllowlist;
  /** The largest image accepted, in bytes. @defaultValue 26214400 (25 MiB) */
  maxBytes?: number;
  /** The whole download must end within this, in milliseconds. @defaultValue 30000 */
  timeoutMs?: number;
}

const DEFAULT_IMAGE_DOWNLOAD = { maxBytes: 25 * 1024 * 1024, timeoutMs: 30_000 };

/** `providerOptions[name]` keys the adapter consumes itself instead of sending them as body fields. */
const CONTROL_KEYS = new Set(["useMaxCompletionTokens"]);

const DEFAULT_BASE_URL = "https://api.openai.com/v1";

/**
 * A {@link Provider} on the official `openai` SDK, for OpenAI and any
 * OpenAI-compatible endpoint (DeepSeek, Ollama, vLLM, ...). SDK retries are off:
 * every call is one HTTP attempt, and failures come out as {@link ProviderError}.
 * Allow-listed fields of `providerOptions[name]` are passed through into the request
 * body; any other field fails the call with `invalid_request` before it is sent.
 */
export function createOpenAIProvider(options: OpenAIProviderOptions): Provider {
  const name = options.name ?? "openai";
  if (typeof options.apiKey !== "string" || options.apiKey === "") {
    throw new TypeError(`provider "${name}": apiKey must be a non-empty string`);
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new RangeError(`provider "${name}": timeoutMs must be a positive number`);
  }
  const fetchFunction = options.fetch ?? globalThis.fetch;
  const imageDownload = { ...DEFAULT_IMAGE_DOWNLOAD, ...options.imageDownload };
  const client = new OpenAI({
    apiKey: options.apiKey,
    // Explicit values (null included) keep the SDK from reading OPENAI_BASE_URL,
    // OPENAI_ORG_ID and OPENAI_PROJECT_ID: configuration comes from the caller only.
    baseURL: options.baseURL ?? DEFAULT_BASE_URL,
    organization: options.organization ?? null,
    project: null,
    // The router owns retries (backoff, fallback, breaker); a hidden SDK retry would
    // multiply attempts and hide failures from it.
    maxRetries: 0,
    fetch: fetchFunction,
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    ...(options.defaultHeaders === undefined ? {} : { defaultHeaders: options.defaultHeaders }),
  });

  function resolveModel(model: string): string {
    return resolveModelOrThrow(name, model, options.defaultModel);
  }

  /**
   * Maps a failure, treating anything that ends a call whose signal has aborted as
   * `canceled`: the abort reason can be any value, and whatever the SDK saw last
   * (a reset socket, a cut stream) is a consequence of the caller giving up.
   */
  function toProviderError(error: unknown, signal: AbortSignal | undefined): ProviderError {
    const canceled = canceledIfAborted(name, error, signal);
    if (canceled !== undefined) return canceled;
    return mapOpenAIError(error, name);
  }

  /**
   * The fields shared by streaming and non-streaming chat requests. The output cap is
   * always sent (the reservation covers exactly that much), and only allow-listed
   * `providerOptions` are; the normalized fields win over them.
   */
  function chatBody(request: TextGenerationRequest) {
    const { body: extraBody, control } = splitProviderOptions(
      allowedProviderOptions(name, "openai", "text", request.providerOptions),
    );
    const maxTokens = request.maxTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
    const useMaxCompletionTokens =
      typeof control.useMaxCompletionTokens === "boolean"
        ? control.useMaxCompletionTokens
        : (options.useMaxCompletionTokens ?? false);
    return {
      extraBody,
      fields: {
        model: resolveModel(request.model),
        messages: request.messages.map(toOpenAIMessage),
        ...(useMaxCompletionTokens ? { max_completion_tokens: maxTokens } : { max_tokens: maxTokens }),
        ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        ...(request.topP === undefined ? {} : { top_p: request.topP }),
        ...(request.stop === undefined ? {} : { stop: request.stop }),
      },
    };
  }

  const batches =
    options.batchApi === true
      ? createOpenAIBatchApi({
          client,
          name,
          chatBody(request) {
            const { extraBody, fields } = chatBody(request);
            return { ...extraBody, ...fields };
          },
          toResult(completion, { requestId }) {
            const choice = completion.choices[0];
            const text = choice?.message.content ?? "";
            return {
              text,
              finishReason: mapOpenAIFinishReason(choice?.finish_reason),
              usage: toOpenAITokenUsage(completion.usage) ?? { inputTokens: 0, outputTokens: 0 },
              model: completion.model,
              providerRequestId: requestId ?? completion.id,
            };
          },
        })
      : undefined;

  return {
    name,
    ...(options.defaultModel === undefined ? {} : { defaultModel: options.defaultModel }),
    ...(batches === undefined ? {} : { batches }),

    async generateText(request) {
      try {
        const { extraBody, fields } = chatBody(request);
        const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
          ...extraBody,
          ...fields,
          stream: false,
        };
        const { data, request_id: requestId } = await client.chat.completions
          .create(body, { signal: request.signal ?? null })
          .withResponse();
        const choice = data.choices[0];
        if (choice === undefined) {
          throw new ProviderError("provider_unavailable", `${name}: the response had no choices`, {
            provider: name,
            ...(requestId ? { requestId } : {}),
          });
        }
        const text = choice.message.content ?? "";
        return {
          text,
          finishReason: mapOpenAIFinishReason(choice.finish_reason),
          usage: toOpenAITokenUsage(data.usage) ?? estimateUsage(request.messages, text),
          model: data.model || fields.model,
          // x-request-id is what OpenAI support asks for; compatible servers that
          // send none still identify the completion by its id.
          providerRequestId: requestId || data.id,
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async *streamText(request): AsyncGenerator<TextStreamPart> {
      let text = "";
      try {
        const { extraBody, fields } = chatBody(request);
        const body: OpenAI.Chat.ChatCompletionCreateParamsStreaming = {
          // Without include_usage a stream reports no token counts; a server that
          // rejects it can be told `stream_options: null` in providerOptions.
          stream_options: { include_usage: true },
          ...extraBody,
          ...fields,
          stream: true,
        };
        const { data: stream, request_id: requestId } = await client.chat.completions
          .create(body, { signal: request.signal ?? null })
          .withResponse();

        let finishReason: FinishReason | undefined;
        let usage: TokenUsage | undefined;
        let model = fields.model;
        let completionId: string | undefined;
        for await (const chunk of stream) {
          completionId ??= chunk.id;
          if (chunk.model) model = chunk.model;
          const choice = chunk.choices[0];
          const delta = choice?.delta?.content;
          if (delta) {
            text += delta;
            yield { type: "text-delta", delta };
          }
          if (choice?.finish_reason) finishReason = mapOpenAIFinishReason(choice.finish_reason);
          usage = toOpenAITokenUsage(chunk.usage) ?? usage;
        }
        // The SDK ends an aborted stream quietly; the caller must still learn it was canceled.
        if (request.signal?.aborted) throw new OpenAI.APIUserAbortError();
        if (finishReason === undefined) {
          throw new ProviderError("provider_unavailable", `${name}: the stream ended before it finished`, {
            provider: name,
            ...(requestId ? { requestId } : {}),
          });
        }
        const providerRequestId = requestId || completionId;
        yield {
          type: "finish",
          finishReason,
          usage: usage ?? estimateUsage(request.messages, text),
          model,
          ...(providerRequestId ? { providerRequestId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    generateImage(request: ImageGenerationRequest): Promise<ImageGenerationResult> {
      return imageCall(request, (model, extraBody, signal) =>
        // size and quality are strings here because compatible servers accept values
        // the SDK's literal unions do not list; the server validates them.
        client.images
          .generate(
            {
              ...extraBody,
              model,
              prompt: request.prompt,
              n: request.n,
              ...sizeAndQuality(request),
            } as OpenAI.Images.ImageGenerateParamsNonStreaming,
            { signal },
          )
          .withResponse(),
      );
    },

    editImage(request: ImageEditRequest): Promise<ImageGenerationResult> {
      // A multipart request: the SDK sends the files and stringifies the other fields.
      return imageCall(request, async (model, extraBody, signal) =>
        client.images
          .edit(
            {
              ...extraBody,
              model,
              prompt: request.prompt,
              image: await toUpload(request.image, "image"),
              ...(request.mask === undefined ? {} : { mask: await toUpload(request.mask, "mask") }),
              n: request.n,
              ...sizeAndQuality(request),
            } as OpenAI.Images.ImageEditParamsNonStreaming,
            { signal },
          )
          .withResponse(),
      );
    },

    createImageVariation(request: ImageVariationRequest): Promise<ImageGenerationResult> {
      return imageCall(request, async (model, extraBody, signal) =>
        client.images
          .createVariation(
            {
              ...extraBody,
              model,
              image: await toUpload(request.image, "image"),
              n: request.n,
              ...(request.size === undefined ? {} : { size: request.size }),
            } as OpenAI.Images.ImageCreateVariationParams,
            { signal },
          )
          .withResponse(),
      );
    },

    async listModels(listOptions) {
      const ids: string[] = [];
      try {
        for await (const model of client.models.list({ signal: listOptions?.signal ?? null })) {
          ids.push(model.id);
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
        await client.models.list({ signal: healthOptions?.signal ?? null });
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

  /**
   * One image call (generation, edit or variation): resolves the model, sends the
   * request `send` builds with the caller's extra body fields, and maps the answer
   * and any error the same way for all three.
   */
  async function imageCall(
    request: {
      model: string;
      providerOptions?: Record<string, Record<string, unknown>>;
      signal?: AbortSignal;
    },
    send: (
      model: string,
      extraBody: Record<string, unknown>,
      signal: AbortSignal | null,
    ) => Promise<{ data: OpenAI.Images.ImagesResponse; request_id: string | null | undefined }>,
  ): Promise<ImageGenerationResult> {
    try {
      // n, size and quality come from the request's own fields, never from these.
      const { body: extraBody } = splitProviderOptions(
        allowedProviderOptions(name, "openai", "image", request.providerOptions),
      );
      const model = resolveModel(request.model);
      const { data, request_id: requestId } = await send(model, extraBody, request.signal ?? null);
      return await toImageResult(data, requestId, model, request.signal);
    } catch (error) {
      throw toProviderError(error, request.signal);
    }
  }

  /** The images of a generation, edit or variation response, with usage and the request id. */
  async function toImageResult(
    data: OpenAI.Images.ImagesResponse,
    requestId: string | null | undefined,
    model: string,
    signal: AbortSignal | undefined,
  ): Promise<ImageGenerationResult> {
    const images = await Promise.all((data.data ?? []).map((image) => toImage(image, data, signal)));
    if (images.length === 0) {
      throw new ProviderError("provider_unavailable", `${name}: the response had no images`, {
        provider: name,
        ...(requestId ? { requestId } : {}),
      });
    }
    return {
      images,
      usage: {
        images: images.length,
        ...(data.usage === undefined
          ? {}
          : { inputTokens: data.usage.input_tokens, outputTokens: data.usage.output_tokens }),
      },
      model,
      ...(requestId ? { providerRequestId: requestId } : {}),
    };
  }

  /** One generated image as bytes: decoded from base64, or downloaded before its URL expires. */
  async function toImage(
    image: OpenAI.Images.Image,
    response: OpenAI.Images.ImagesResponse,
    signal: AbortSignal | undefined,
  ): Promise<ImageGenerationResult["images"][number]> {
    const revised = image.revised_prompt ? { revisedPrompt: image.revised_prompt } : {};
    const declared = response.output_format ? `image/${response.output_format}` : undefined;
    if (image.b64_json) {
      const bytes = Uint8Array.from(Buffer.from(image.b64_json, "base64"));
      return { bytes, mediaType: declared ?? detectImageMediaType(bytes) ?? "image/png", ...revised };
    }
    if (image.url) {
      const download = await downloadImage(image.url, signal);
      const mediaType =
        detectImageMediaType(download.bytes) ??
        (download.contentType?.startsWith("image/") ? download.contentType : undefined);
      return { bytes: download.bytes, mediaType: mediaType ?? declared ?? "image/png", ...revised };
    }
    throw new ProviderError("provider_unavailable", `${name}: an image had neither b64_json nor url`, {
      provider: name,
    });
  }

  /**
   * Downloads an image link from an answer through the SSRF guard: a compatible
   * server could point it at the metadata service or an internal host.
   */
  async function downloadImage(url: string, signal: AbortSignal | undefined) {
    try {
      return await downloadPublicUrl(url, { ...imageDownload, signal, label: "image" });
    } catch (error) {
      if (error instanceof PublicTargetRefusedError || error instanceof DownloadFailedError) {
        throw new ProviderError(
          error.code === "timeout" ? "timeout" : "provider_unavailable",
          `${name}: downloading the generated image failed: ${error.message}`,
          {
            provider: name,
            retryable: error.retryable,
            cause: error,
            ...(error instanceof DownloadFailedError && typeof error.details?.status === "number"
              ? { status: error.details.status }
              : {}),
          },
        );
      }
      throw error;
    }
  }
}

const UPLOAD_EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
};

/** An image as a multipart file part; OpenAI infers the format from the name and the type. */
function toUpload(image: ImageSource, basename: string) {
  const extension = UPLOAD_EXTENSIONS[image.mediaType] ?? "png";
  return toFile(image.bytes, `${basename}.${extension}`, { type: image.mediaType });
}

/** Splits `providerOptions[name]` into body pass-through fields and the adapter's own switches. */
function sizeAndQuality(request: { size?: string; quality?: string }): { size?: string; quality?: string } {
  return {
    ...(request.size === undefined ? {} : { size: request.size }),
    ...(request.quality === undefined ? {} : { quality: request.quality }),
  };
}

function splitProviderOptions(providerOptions: Record<string, unknown> | undefined): {
  body: Record<string, unknown>;
  control: Record<string, unknown>;
} {
  const body: Record<string, unknown> = {};
  const control: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(providerOptions ?? {})) {
    if (CONTROL_KEYS.has(key)) control[key] = value;
    else body[key] = value;
  }
  return { body, control };
}

function toOpenAIMessage(message: ChatMessage): OpenAI.Chat.ChatCompletionMessageParam {
  switch (message.role) {
    case "system":
      return { role: "system", content: message.content };
    case "user":
      return { role: "user", content: message.content };
    case "assistant":
      return { role: "assistant", content: message.content };
  }
}

/** OpenAI's finish reasons in genq's terms; anything new or vendor-specific is `other`. */
export function mapOpenAIFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case "stop":
    case "length":
    case "content_filter":
      return reason;
    case "tool_calls":
    case "function_call":
      return "tool_calls";
    default:
      return "other";
  }
}

/** OpenAI's usage block as genq's {@link TokenUsage}; undefined when the answer had none. */
export function toOpenAITokenUsage(usage: OpenAI.CompletionUsage | null | undefined): TokenUsage | undefined {
  if (usage === null || usage === undefined) return undefined;
  const cached = usage.prompt_tokens_details?.cached_tokens;
  const reasoning = usage.completion_tokens_details?.reasoning_tokens;
  return {
    inputTokens: usage.prompt_tokens,
    outputTokens: usage.completion_tokens,
    ...(typeof cached === "number" ? { cachedInputTokens: cached } : {}),
    ...(typeof reasoning === "number" ? { reasoningTokens: reasoning } : {}),
  };
}

/**
 * Usage for servers that report none (some compatible servers, streams without
 * include_usage support). An estimate keeps quotas charging something rather than
 * nothing for real work.
 */
function estimateUsage(messages: ChatMessage[], text: string): TokenUsage {
  return {
    inputTokens: messages.reduce((sum, message) => sum + estimateTokens(message.content), 0),
    outputTokens: estimateTokens(text),
  };
}
