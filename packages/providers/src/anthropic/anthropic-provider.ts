import Anthropic from "@anthropic-ai/sdk";
import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import { canceledIfAborted, resolveModelOrThrow } from "../adapter-support.ts";
import { allowedProviderOptions } from "../allowed-provider-options.ts";
import { estimateTokens } from "../estimate-tokens.ts";
import type { Provider, TextGenerationRequest, TextStreamPart } from "../provider.ts";
import { MAX_LISTED_MODELS } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { createAnthropicBatchApi } from "./anthropic-batch-api.ts";
import { mapAnthropicError } from "./map-anthropic-error.ts";

/** Options for {@link createAnthropicProvider}. */
export interface AnthropicProviderOptions {
  /**
   * The provider name: the key of its `providerOptions`, its name in errors,
   * usage and prices. Use another name with `baseURL` for a second account or an
   * Anthropic-compatible gateway. Default `anthropic`.
   */
  name?: string;
  apiKey: string;
  /** Default `https://api.anthropic.com`, without `/v1`: the SDK adds `/v1/messages` itself. */
  baseURL?: string;
  /** The model used when a request names none. */
  defaultModel?: string;
  /**
   * Per-request timeout, in milliseconds. Default 10 minutes, the SDK's. It is
   * always passed to the SDK, which also stops the SDK from refusing, before
   * sending anything, a non-streaming request whose `max_tokens` it guesses would
   * take longer than that: the job's deadline decides, not a guess.
   */
  timeoutMs?: number;
  /** The fetch used for API calls; inject one to proxy or record. */
  fetch?: typeof fetch;
  /** Sent with every request, e.g. `{ "anthropic-beta": "..." }`. */
  defaultHeaders?: Record<string, string>;
  /**
   * `max_tokens` for requests that set no `maxTokens`. The Messages API requires
   * the field, unlike OpenAI's. Default 1024.
   */
  defaultMaxTokens?: number;
}

const DEFAULT_BASE_URL = "https://api.anthropic.com";
const DEFAULT_MAX_TOKENS = 1024;
/** The SDK's own default; passed explicitly for the reason given on `timeoutMs`. */
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * A {@link Provider} on the official `@anthropic-ai/sdk` (the Messages API).
 * SDK retries are off: every call is one HTTP attempt, and failures come out as
 * {@link ProviderError}. System messages become the `system` parameter; allow-listed
 * fields of `providerOptions[name]` (`thinking`, `metadata`, `top_k`) are passed
 * through into the request body, any other fails the call before it is sent. Anthropic makes no images, so
 * `generateImage` is absent.
 */
export function createAnthropicProvider(options: AnthropicProviderOptions): Provider {
  const name = options.name ?? "anthropic";
  if (typeof options.apiKey !== "string" || options.apiKey === "") {
    throw new TypeError(`provider "${name}": apiKey must be a non-empty string`);
  }
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new RangeError(`provider "${name}": timeoutMs must be a positive number`);
  }
  const defaultMaxTokens = options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(defaultMaxTokens) && defaultMaxTokens > 0)) {
    throw new RangeError(`provider "${name}": defaultMaxTokens must be a positive integer`);
  }

  const client = new Anthropic({
    // An explicit key, base URL, signing key, log level and telemetry option keep the
    // SDK from reading ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, ANTHROPIC_BASE_URL,
    // ANTHROPIC_WEBHOOK_SIGNING_KEY, ANTHROPIC_LOG, ANTHROPIC_OPEN_TELEMETRY* and the
    // profile files: configuration comes from the caller only.
    apiKey: options.apiKey,
    baseURL: options.baseURL ?? DEFAULT_BASE_URL,
    webhookKey: null,
    logLevel: "warn",
    // The SDK's defaults: spans only when the application registered a tracer provider.
    openTelemetry: {},
    // The router owns retries (backoff, fallback, breaker); a hidden SDK retry would
    // multiply attempts and hide failures from it.
    maxRetries: 0,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(options.defaultHeaders === undefined ? {} : { defaultHeaders: options.defaultHeaders }),
  });
  ignoreEnvironmentHeaders(client, options.defaultHeaders);

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
    return mapAnthropicError(error, name);
  }

  /** The body fields shared by streaming and non-streaming message requests. */
  function messageBody(request: TextGenerationRequest) {
    const { system, messages } = toAnthropicMessages(request.messages);
    return {
      // Allow-listed pass-through first, so the normalized fields below win over a stray duplicate.
      ...allowedProviderOptions(name, "anthropic", "text", request.providerOptions),
      model: resolveModel(request.model),
      messages,
      max_tokens: request.maxTokens ?? defaultMaxTokens,
      ...(system === undefined ? {} : { system }),
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.topP === undefined ? {} : { top_p: request.topP }),
      ...(request.stop === undefined ? {} : { stop_sequences: request.stop }),
    };
  }

  const batches = createAnthropicBatchApi({
    client,
    name,
    messageBody: (request) => ({ ...messageBody(request), stream: false }),
    toResult(message) {
      const text = message.content
        .filter((block): block is Anthropic.TextBlock => block.type === "text")
        .map((block) => block.text)
        .join("");
      return {
        text,
        finishReason: mapAnthropicStopReason(message.stop_reason),
        usage: toAnthropicTokenUsage(message.usage) ?? { inputTokens: 0, outputTokens: 0 },
        model: message.model,
        providerRequestId: message.id,
      };
    },
  });

  return {
    name,
    ...(options.defaultModel === undefined ? {} : { defaultModel: options.defaultModel }),
    batches,

    async generateText(request) {
      try {
        const fields = messageBody(request);
        const body: Anthropic.MessageCreateParamsNonStreaming = { ...fields, stream: false };
        const { data, request_id: requestId } = await client.messages
          .create(body, { signal: request.signal ?? null })
          .withResponse();
        const text = data.content
          .filter((block): block is Anthropic.TextBlock => block.type === "text")
          .map((block) => block.text)
          .join("");
        // Compatible gateways may omit the header; the message id still identifies the call.
        const providerRequestId = requestId || data.id;
        return {
          text,
          finishReason: mapAnthropicStopReason(data.stop_reason),
          usage: toAnthropicTokenUsage(data.usage) ?? estimateUsage(request.messages, text),
          model: data.model || fields.model,
          ...(providerRequestId ? { providerRequestId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async *streamText(request): AsyncGenerator<TextStreamPart> {
      let text = "";
      try {
        const fields = messageBody(request);
        const body: Anthropic.MessageCreateParamsStreaming = { ...fields, stream: true };
        const { data: stream, request_id: requestId } = await client.messages
          .create(body, { signal: request.signal ?? null })
          .withResponse();

        let model = fields.model;
        let messageId: string | undefined;
        let startUsage: Anthropic.Usage | undefined;
        let deltaUsage: Anthropic.MessageDeltaUsage | undefined;
        let stopReason: Anthropic.StopReason | null = null;
        let stopped = false;
        for await (const event of stream) {
          switch (event.type) {
            case "message_start":
              messageId = event.message.id;
              if (event.message.model) model = event.message.model;
              startUsage = event.message.usage;
              break;
            case "content_block_delta":
              if (event.delta.type === "text_delta" && event.delta.text) {
                text += event.delta.text;
                yield { type: "text-delta", delta: event.delta.text };
              }
              break;
            case "message_delta":
              stopReason = event.delta.stop_reason ?? stopReason;
              deltaUsage = event.usage;
              break;
            case "message_stop":
              stopped = true;
              break;
            default:
              // content_block_start/stop carry no text of their own; thinking and
              // tool-input deltas are not part of the text.
              break;
          }
        }
        // The SDK ends an aborted stream quietly; the caller must still learn it was canceled.
        if (request.signal?.aborted) throw new Anthropic.APIUserAbortError();
        if (!stopped) {
          throw new ProviderError("provider_unavailable", `${name}: the stream ended before it finished`, {
            provider: name,
            ...(requestId ? { requestId } : {}),
          });
        }
        const providerRequestId = requestId || messageId;
        yield {
          type: "finish",
          finishReason: mapAnthropicStopReason(stopReason),
          usage: mergeStreamUsage(startUsage, deltaUsage) ?? estimateUsage(request.messages, text),
          model,
          ...(providerRequestId ? { providerRequestId } : {}),
        };
      } catch (error) {
        throw toProviderError(error, request.signal);
      }
    },

    async listModels(listOptions) {
      const ids: string[] = [];
      try {
        for await (const model of client.models.list(
          { limit: 100 },
          { signal: listOptions?.signal ?? null },
        )) {
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
        // One small page: proves the key, the network path and the API without spending tokens.
        await client.models.list({ limit: 1 }, { signal: healthOptions?.signal ?? null });
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
}

/**
 * The SDK reads `ANTHROPIC_CUSTOM_HEADERS` in its constructor whatever the
 * options say, and merges those headers into every request. No option turns that
 * off, so the merged value is replaced with the caller's own headers afterwards;
 * a test guards this, since `_options` is the SDK's internal field.
 */
function ignoreEnvironmentHeaders(
  client: Anthropic,
  defaultHeaders: Record<string, string> | undefined,
): void {
  const internal: unknown = Reflect.get(client, "_options");
  if (typeof internal === "object" && internal !== null && "defaultHeaders" in internal) {
    Reflect.set(internal, "defaultHeaders", defaultHeaders);
  }
}

/**
 * genq's messages in the Messages API's shape: every `system` message goes into
 * the top-level `system` parameter (joined by blank lines, in order), because the
 * API takes the system prompt there; user and assistant turns are kept as they
 * are. Consecutive turns of one role are not merged: the API combines them into
 * one turn itself.
 */
function toAnthropicMessages(messages: ChatMessage[]): {
  system: string | undefined;
  messages: Anthropic.MessageParam[];
} {
  const systemParts: string[] = [];
  const turns: Anthropic.MessageParam[] = [];
  for (const message of messages) {
    switch (message.role) {
      case "system":
        systemParts.push(message.content);
        break;
      case "user":
      case "assistant":
        turns.push({ role: message.role, content: message.content });
        break;
    }
  }
  return { system: systemParts.length === 0 ? undefined : systemParts.join("\n\n"), messages: turns };
}

/** Anthropic's stop reasons in genq's terms; anything new is `other`. */
export function mapAnthropicStopReason(reason: Anthropic.StopReason | null | undefined): FinishReason {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return "stop";
    case "max_tokens":
    // The output ran into the context window: cut short by a token limit, like max_tokens.
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      return "other";
  }
}

/** The usage fields the non-streaming and streaming responses share. */
/** The usage fields of an Anthropic message. */
export interface AnthropicUsageFields {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  output_tokens_details?: { thinking_tokens?: number | null } | null;
}

/**
 * Anthropic's `input_tokens` excludes the tokens read from and written to the
 * prompt cache; genq's `inputTokens` is every input token, with
 * `cachedInputTokens` (cache reads) a part of it, as OpenAI counts them and the
 * price catalog expects. Cache writes are billed as input, so they count there too.
 */
/** Anthropic's usage block as genq's {@link TokenUsage}; undefined when the answer had none. */
export function toAnthropicTokenUsage(
  usage: AnthropicUsageFields | null | undefined,
): TokenUsage | undefined {
  if (usage === null || usage === undefined || typeof usage.input_tokens !== "number") return undefined;
  const cacheRead = usage.cache_read_input_tokens;
  const cacheWrite = usage.cache_creation_input_tokens ?? 0;
  const thinking = usage.output_tokens_details?.thinking_tokens;
  return {
    inputTokens: usage.input_tokens + cacheWrite + (cacheRead ?? 0),
    outputTokens: usage.output_tokens ?? 0,
    ...(typeof cacheRead === "number" ? { cachedInputTokens: cacheRead } : {}),
    ...(typeof thinking === "number" ? { reasoningTokens: thinking } : {}),
  };
}

/**
 * A stream's usage: `message_start` reports the input (and a placeholder output
 * count), `message_delta` the final, cumulative output and, on newer API
 * versions, the input again. Later non-null values win.
 */
function mergeStreamUsage(
  start: Anthropic.Usage | undefined,
  delta: Anthropic.MessageDeltaUsage | undefined,
): TokenUsage | undefined {
  return toAnthropicTokenUsage({
    input_tokens: delta?.input_tokens ?? start?.input_tokens,
    output_tokens: delta?.output_tokens ?? start?.output_tokens,
    cache_creation_input_tokens: delta?.cache_creation_input_tokens ?? start?.cache_creation_input_tokens,
    cache_read_input_tokens: delta?.cache_read_input_tokens ?? start?.cache_read_input_tokens,
    output_tokens_details: delta?.output_tokens_details ?? start?.output_tokens_details,
  });
}

/**
 * Usage for gateways that report none. An estimate keeps quotas charging
 * something rather than nothing for real work.
 */
function estimateUsage(messages: ChatMessage[], text: string): TokenUsage {
  return {
    inputTokens: messages.reduce((sum, message) => sum + estimateTokens(message.content), 0),
    outputTokens: estimateTokens(text),
  };
}
