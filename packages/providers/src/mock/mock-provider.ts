import { createHash } from "node:crypto";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { ChatMessage, FinishReason, TokenUsage } from "@genq/core";
import { allowedProviderOptions, DEFAULT_MAX_OUTPUT_TOKENS } from "../allowed-provider-options.ts";
import { estimateTokens, maxInputTokens, truncateToTokens } from "../estimate-tokens.ts";
import { imageDimensions } from "../image-dimensions.ts";
import type {
  ImageEditRequest,
  ImageGenerationRequest,
  ImageGenerationResult,
  ImageVariationRequest,
  Provider,
  TextGenerationRequest,
  TextGenerationResult,
  TextStreamPart,
} from "../provider.ts";
import { ProviderError, type ProviderErrorCode } from "../provider-error.ts";
import { abortableDelay } from "./abortable-delay.ts";
import { createInMemoryFailureCounter, type FailureCounter } from "./failure-counter.ts";
import { renderPng } from "./render-png.ts";

/** Options for {@link createMockProvider}. */
export interface MockProviderOptions {
  /** The provider name, and the `providerOptions` key it reads besides `mock`. Default `mock`. */
  name?: string;
  /** Simulated time to the answer (to the first delta when streaming), in milliseconds. Default 0. */
  latencyMs?: number;
  /** Probability (0..1) that a call fails with a retryable `provider_unavailable` (503). Default 0. */
  failureRate?: number;
  /** The random source for `failureRate`; inject a seeded one for reproducible runs. Default `Math.random`. */
  random?: () => number;
  /** The model reported when a request names none. Default `mock-1`. */
  defaultModel?: string;
  /**
   * Where `failTimes` counts attempts. Attempts of one job can run in different
   * worker processes, so the worker passes a shared (Redis-backed) counter.
   * Default: an in-memory counter private to this provider instance.
   */
  failureCounter?: FailureCounter;
}

/**
 * Per-request behaviour, read from `providerOptions.mock` and then
 * `providerOptions[<name>]` (the latter wins), so a test can steer one mock of
 * several or all of them at once.
 */
export interface MockRequestOptions {
  /** Overrides the provider's `latencyMs` for this call. */
  latencyMs?: number;
  /** Makes the call throw a {@link ProviderError} with this code (retryable per the taxonomy). */
  fail?: ProviderErrorCode;
  /**
   * Fails only the first N calls with the same messages (for images: the same
   * prompt, size and `n`), then succeeds; counted in the `failureCounter`.
   * Without `fail`, the failure is `provider_unavailable`.
   */
  failTimes?: number;
  /** `retryAfterMs` carried by the simulated failure (a rate limit's Retry-After). */
  retryAfterMs?: number;
  /** When streaming, the pause between deltas (a model producing tokens over time). Default 0. */
  deltaDelayMs?: number;
  /**
   * The first N streams of the same messages break halfway through their deltas with a
   * retryable `provider_unavailable` (a connection lost mid-stream); counted in the
   * `failureCounter` apart from `failTimes`.
   */
  streamBreaks?: number;
}

/**
 * The HTTP status a real provider would send with each code. The record type
 * makes it exhaustive, so it doubles as the list of valid `fail` codes.
 */
const STATUS_BY_CODE: Record<ProviderErrorCode, number | undefined> = {
  rate_limited: 429,
  credit_exhausted: 402,
  quota_exceeded: 429,
  content_filtered: 400,
  context_length_exceeded: 400,
  auth_failed: 401,
  invalid_request: 400,
  provider_unavailable: 503,
  timeout: 408,
  canceled: undefined,
};

/** How much of the last user message the reply quotes, so replies stay short. */
const QUOTED_CHARACTERS = 48;

/** The image size when a request names none. */
const DEFAULT_IMAGE_SIZE = "1024x1024";
/** The smallest and largest image side the mock draws, in pixels. */
const MIN_IMAGE_SIDE = 256;
const MAX_IMAGE_SIDE = 2048;
/** The most images one request may ask for, as with OpenAI's image API. */
const MAX_IMAGES_PER_REQUEST = 10;

/**
 * An offline, deterministic {@link Provider} for development, demos and tests.
 * The reply is derived from the messages (same input, same text), input usage
 * is the reservation's bound ({@link maxInputTokens}), output usage a ~4
 * characters/token estimate, and `maxTokens`/`stop` behave like a real model's
 * (without `maxTokens`, {@link DEFAULT_MAX_OUTPUT_TOKENS} applies). `generateImage` draws real PNGs whose pictures derive from the
 * prompt (see {@link renderPng}); `editImage` and `createImageVariation` draw from
 * the prompt and the sources' SHA-256, at the source's size. Latency, random
 * failures and scripted failures are configurable and apply to all of them.
 */
export function createMockProvider(options: MockProviderOptions = {}): Provider {
  const name = options.name ?? "mock";
  const defaultLatencyMs = options.latencyMs ?? 0;
  const failureRate = options.failureRate ?? 0;
  const random = options.random ?? Math.random;
  const defaultModel = options.defaultModel ?? "mock-1";
  const failureCounter = options.failureCounter ?? createInMemoryFailureCounter();

  if (!(Number.isFinite(defaultLatencyMs) && defaultLatencyMs >= 0)) {
    throw new RangeError(`mock provider "${name}": latencyMs must be a non-negative number`);
  }
  if (!(failureRate >= 0 && failureRate <= 1)) {
    throw new RangeError(`mock provider "${name}": failureRate must be between 0 and 1`);
  }

  function canceled(signal: AbortSignal | undefined): ProviderError {
    return new ProviderError("canceled", `${name}: the request was canceled`, {
      provider: name,
      cause: signal?.reason,
    });
  }

  /** Waits the latency and throws the simulated failure, if this call gets one. */
  async function simulateCall(
    requestOptions: MockRequestOptions,
    fingerprint: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (signal?.aborted) throw canceled(signal);
    try {
      const latencyMs = requestOptions.latencyMs ?? defaultLatencyMs;
      if (latencyMs > 0) await abortableDelay(latencyMs, signal);
    } catch (error) {
      if (signal?.aborted) throw canceled(signal);
      throw error;
    }

    const failureCode = await decideFailure(requestOptions, fingerprint);
    if (failureCode !== undefined) {
      const status = STATUS_BY_CODE[failureCode];
      throw new ProviderError(failureCode, `${name}: simulated ${failureCode}`, {
        provider: name,
        ...(status === undefined ? {} : { status }),
        requestId: `mock_${fingerprint}`,
        ...(requestOptions.retryAfterMs === undefined ? {} : { retryAfterMs: requestOptions.retryAfterMs }),
      });
    }
  }

  /** Waits, decides whether to fail, and builds the reply that both text methods return. */
  async function respond(request: TextGenerationRequest): Promise<TextGenerationResult> {
    const requestOptions = readRequestOptions(name, request.providerOptions);
    const fingerprint = fingerprintMessages(request.messages);
    await simulateCall(requestOptions, fingerprint, request.signal);

    const { text, finishReason } = applyLimits(replyText(request.messages, fingerprint), request);
    const usage: TokenUsage = {
      // The mock's "tokenizer" counts input as the reservation bound does, so a
      // job's input is charged exactly what was reserved for it.
      inputTokens: maxInputTokens(request.messages),
      outputTokens: estimateTokens(text),
    };
    return {
      text,
      finishReason,
      usage,
      model: request.model || defaultModel,
      providerRequestId: `mock_${fingerprint}`,
    };
  }

  async function decideFailure(
    requestOptions: MockRequestOptions,
    fingerprint: string,
  ): Promise<ProviderErrorCode | undefined> {
    if (requestOptions.failTimes !== undefined) {
      // Keyed by provider name too, so a fallback mock does not share the primary's count.
      const attempt = await failureCounter.increment(`${name}:${fingerprint}`);
      if (attempt <= requestOptions.failTimes) return requestOptions.fail ?? "provider_unavailable";
    } else if (requestOptions.fail !== undefined) {
      return requestOptions.fail;
    }
    if (failureRate > 0 && random() < failureRate) return "provider_unavailable";
    return undefined;
  }

  /**
   * Draws `request.n` PNGs from `seed` after the simulated latency and failures;
   * generations, edits and variations differ only in their seed and size.
   */
  async function drawImages(
    request: Pick<ImageGenerationRequest, "model" | "n" | "providerOptions" | "signal">,
    seed: string,
    { width, height }: { width: number; height: number },
    revisedPrompt?: string,
  ): Promise<ImageGenerationResult> {
    const requestOptions = readRequestOptions(name, request.providerOptions);
    if (!Number.isInteger(request.n) || request.n < 1 || request.n > MAX_IMAGES_PER_REQUEST) {
      throw new ProviderError(
        "invalid_request",
        `${name}: n must be an integer in 1..${MAX_IMAGES_PER_REQUEST}, got ${request.n}`,
        { provider: name },
      );
    }
    const fingerprint = fingerprintImageRequest(seed, width, height, request.n);
    await simulateCall(requestOptions, fingerprint, request.signal);

    const images: ImageGenerationResult["images"] = [];
    for (let index = 0; index < request.n; index++) {
      // Drawing is synchronous (30–45 ms at 1024x1024); letting other work run between
      // images keeps a worker's lock renewals and heartbeats on time.
      if (index > 0) await yieldToEventLoop();
      if (request.signal?.aborted) throw canceled(request.signal);
      images.push({
        // The index makes the images of one request differ; the seed makes them repeatable.
        bytes: renderPng({ width, height, seed: `${seed}\n${index}` }),
        mediaType: "image/png",
        ...(revisedPrompt === undefined ? {} : { revisedPrompt }),
      });
    }
    return {
      images,
      usage: { images: images.length },
      model: request.model || defaultModel,
      providerRequestId: `mock_${fingerprint}`,
    };
  }

  /** An edit or variation keeps its source's size, as OpenAI's do, unless the request names one. */
  function sizeOfSource(request: ImageEditRequest | ImageVariationRequest): {
    width: number;
    height: number;
  } {
    if (request.size !== undefined) return parseImageSize(name, request.size);
    const source = imageDimensions(request.image.bytes);
    const drawable = (side: number) => side >= MIN_IMAGE_SIDE && side <= MAX_IMAGE_SIDE;
    if (source !== undefined && drawable(source.width) && drawable(source.height)) return source;
    return parseImageSize(name, DEFAULT_IMAGE_SIZE);
  }

  return {
    name,
    defaultModel,

    generateText: respond,

    async *streamText(request): AsyncGenerator<TextStreamPart> {
      const result = await respond(request);
      const { deltaDelayMs = 0, streamBreaks } = readRequestOptions(name, request.providerOptions);
      const deltas = splitIntoDeltas(result.text);
      const breakAt =
        streamBreaks !== undefined &&
        (await failureCounter.increment(`${name}:stream:${fingerprintMessages(request.messages)}`)) <=
          streamBreaks
          ? Math.max(1, Math.floor(deltas.length / 2))
          : undefined;
      for (const [index, delta] of deltas.entries()) {
        if (index === breakAt) {
          throw new ProviderError("provider_unavailable", `${name}: simulated stream break`, {
            provider: name,
            status: 503,
          });
        }
        if (index > 0 && deltaDelayMs > 0) {
          await abortableDelay(deltaDelayMs, request.signal).catch(() => {
            throw canceled(request.signal);
          });
        }
        if (request.signal?.aborted) throw canceled(request.signal);
        yield { type: "text-delta", delta };
      }
      yield {
        type: "finish",
        finishReason: result.finishReason,
        usage: result.usage,
        model: result.model,
        ...(result.providerRequestId === undefined ? {} : { providerRequestId: result.providerRequestId }),
      };
    },

    async generateImage(request: ImageGenerationRequest): Promise<ImageGenerationResult> {
      const size = parseImageSize(name, request.size ?? DEFAULT_IMAGE_SIZE);
      return drawImages(request, request.prompt, size, request.prompt);
    },

    async editImage(request: ImageEditRequest): Promise<ImageGenerationResult> {
      // The sources' hashes join the seed: a new image or mask gives a new picture.
      const sources = [request.image, ...(request.mask === undefined ? [] : [request.mask])];
      const seed = ["edit", request.prompt, ...sources.map((source) => sha256Hex(source.bytes))].join("\n");
      return drawImages(request, seed, sizeOfSource(request), request.prompt);
    },

    async createImageVariation(request: ImageVariationRequest): Promise<ImageGenerationResult> {
      const seed = `variation\n${sha256Hex(request.image.bytes)}`;
      return drawImages(request, seed, sizeOfSource(request));
    },

    async listModels(listOptions) {
      if (listOptions?.signal?.aborted) throw canceled(listOptions.signal);
      return [defaultModel];
    },
    async healthCheck(healthOptions) {
      if (healthOptions?.signal?.aborted) throw canceled(healthOptions.signal);
      return { ok: true, latencyMs: 0 };
    },
  };
}

/** A stable hash of the conversation: same messages, same reply and same failure counter. */
function fingerprintMessages(messages: ChatMessage[]): string {
  const canonical = JSON.stringify(messages.map((message) => [message.role, message.content]));
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Same prompt, size and count: same images and same failure counter. */
function fingerprintImageRequest(prompt: string, width: number, height: number, count: number): string {
  const canonical = JSON.stringify(["image", prompt, width, height, count]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** Parses "WIDTHxHEIGHT", each side within the sizes the mock draws. */
function parseImageSize(name: string, size: string): { width: number; height: number } {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  const width = Number(match?.[1]);
  const height = Number(match?.[2]);
  const inRange = (side: number) => side >= MIN_IMAGE_SIDE && side <= MAX_IMAGE_SIDE;
  if (match === null || !inRange(width) || !inRange(height)) {
    throw new ProviderError(
      "invalid_request",
      `${name}: size must be "WIDTHxHEIGHT" with each side ${MIN_IMAGE_SIDE}..${MAX_IMAGE_SIDE} pixels (e.g. "${DEFAULT_IMAGE_SIZE}"), got "${size}"`,
      { provider: name },
    );
  }
  return { width, height };
}

function replyText(messages: ChatMessage[], fingerprint: string): string {
  const lastUser = messages.findLast((message) => message.role === "user")?.content ?? "";
  const oneLine = lastUser.replace(/\s+/g, " ").trim();
  const quoted = oneLine.length > QUOTED_CHARACTERS ? `${oneLine.slice(0, QUOTED_CHARACTERS)}…` : oneLine;
  return `mock reply to: "${quoted}" (${fingerprint.slice(0, 8)})`;
}

/** Cuts the reply where a real model would stop: the first stop sequence or the token budget. */
function applyLimits(
  text: string,
  request: TextGenerationRequest,
): { text: string; finishReason: FinishReason } {
  let stopIndex = -1;
  for (const sequence of request.stop ?? []) {
    const index = sequence === "" ? -1 : text.indexOf(sequence);
    if (index !== -1 && (stopIndex === -1 || index < stopIndex)) stopIndex = index;
  }
  const limited = truncateToTokens(text, request.maxTokens ?? DEFAULT_MAX_OUTPUT_TOKENS);
  if (stopIndex !== -1 && stopIndex <= limited.length) {
    return { text: text.slice(0, stopIndex), finishReason: "stop" };
  }
  if (limited.length < text.length) return { text: limited, finishReason: "length" };
  return { text, finishReason: "stop" };
}

/** Word-sized pieces whose concatenation is exactly `text`. */
function splitIntoDeltas(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

function readRequestOptions(
  name: string,
  providerOptions: Record<string, Record<string, unknown>> | undefined,
): MockRequestOptions {
  // Mock options are the same for text and image calls; anything else is refused as on a real provider.
  const merged = allowedProviderOptions(
    name,
    "mock",
    "text",
    providerOptions,
    name === "mock" ? ["mock"] : ["mock", name],
  );
  const invalid = (field: string, expected: string) =>
    new ProviderError("invalid_request", `${name}: providerOptions.mock.${field} must be ${expected}`, {
      provider: name,
    });

  const result: MockRequestOptions = {};
  const { latencyMs, fail, failTimes, retryAfterMs, deltaDelayMs, streamBreaks } = merged;
  if (latencyMs !== undefined) {
    if (typeof latencyMs !== "number" || !Number.isFinite(latencyMs) || latencyMs < 0) {
      throw invalid("latencyMs", "a non-negative number");
    }
    result.latencyMs = latencyMs;
  }
  if (fail !== undefined) {
    if (typeof fail !== "string" || !Object.hasOwn(STATUS_BY_CODE, fail)) {
      throw invalid("fail", `one of ${Object.keys(STATUS_BY_CODE).join(", ")}`);
    }
    result.fail = fail as ProviderErrorCode;
  }
  if (failTimes !== undefined) {
    if (typeof failTimes !== "number" || !Number.isInteger(failTimes) || failTimes < 0) {
      throw invalid("failTimes", "a non-negative integer");
    }
    result.failTimes = failTimes;
  }
  if (retryAfterMs !== undefined) {
    if (typeof retryAfterMs !== "number" || !Number.isFinite(retryAfterMs) || retryAfterMs < 0) {
      throw invalid("retryAfterMs", "a non-negative number");
    }
    result.retryAfterMs = retryAfterMs;
  }
  if (deltaDelayMs !== undefined) {
    if (typeof deltaDelayMs !== "number" || !Number.isFinite(deltaDelayMs) || deltaDelayMs < 0) {
      throw invalid("deltaDelayMs", "a non-negative number");
    }
    result.deltaDelayMs = deltaDelayMs;
  }
  if (streamBreaks !== undefined) {
    if (typeof streamBreaks !== "number" || !Number.isInteger(streamBreaks) || streamBreaks < 0) {
      throw invalid("streamBreaks", "a non-negative integer");
    }
    result.streamBreaks = streamBreaks;
  }
  return result;
}
