import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { estimateTokens, truncateToTokens } from "../../estimate-tokens.ts";
import {
  closeFakeServer,
  type RecordedRequest,
  readFakeRequest,
  waitUnlessClosed,
} from "../../testing/fake-server-support.ts";
import apiKeyInvalidFixture from "../__fixtures__/error-api-key-invalid.json" with { type: "json" };
import billingRequiredFixture from "../__fixtures__/error-billing-required.json" with { type: "json" };
import contextLengthFixture from "../__fixtures__/error-context-length.json" with { type: "json" };
import creditsDepletedFixture from "../__fixtures__/error-credits-depleted.json" with { type: "json" };
import dailyQuotaFixture from "../__fixtures__/error-daily-quota.json" with { type: "json" };
import deadlineExceededFixture from "../__fixtures__/error-deadline-exceeded.json" with { type: "json" };
import internalFixture from "../__fixtures__/error-internal.json" with { type: "json" };
import invalidArgumentFixture from "../__fixtures__/error-invalid-argument.json" with { type: "json" };
import modelNotFoundFixture from "../__fixtures__/error-model-not-found.json" with { type: "json" };
import rateLimitFixture from "../__fixtures__/error-rate-limit.json" with { type: "json" };
import unavailableFixture from "../__fixtures__/error-unavailable.json" with { type: "json" };
import unregisteredCallerFixture from "../__fixtures__/error-unregistered-caller.json" with { type: "json" };
import generateContentFixture from "../__fixtures__/generate-content.json" with { type: "json" };
import generateImageFixture from "../__fixtures__/generate-image.json" with { type: "json" };
import modelsListFixture from "../__fixtures__/models-list.json" with { type: "json" };
import promptBlockedFixture from "../__fixtures__/prompt-blocked.json" with { type: "json" };
import streamChunksFixture from "../__fixtures__/stream-generate-content.json" with { type: "json" };
import { createFakeGeminiBatches, type FakeGeminiBatches } from "./fake-gemini-batches.ts";

/** One request the fake received. */
export type FakeGeminiRequest = RecordedRequest;

/** A scripted answer. Every field is optional; an empty object is `200 {}`. */
export interface FakeGeminiResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** A JSON value (sent as JSON) or a string (sent as is). */
  body?: unknown;
  /** Send these as server-sent events (`data: <json>`), the way `:streamGenerateContent?alt=sse` does, instead of `body`. */
  sse?: unknown[];
  /** Wait this long before answering (to test timeouts and cancellation). */
  delayMs?: number;
  /** Wait this long between server-sent events (to cancel a stream half way). */
  sseDelayMs?: number;
  /** Drop the connection without answering (a network failure). */
  disconnect?: boolean;
}

/**
 * Decides the answer to one request; `undefined` falls through to the default
 * behaviour (a realistic answer built from the fixtures).
 */
export type FakeGeminiHandler = (
  request: FakeGeminiRequest,
) => FakeGeminiResponse | undefined | Promise<FakeGeminiResponse | undefined>;

/** Options for {@link startFakeGeminiServer}. */
export interface FakeGeminiServerOptions {
  /**
   * When set, requests must carry this key in `x-goog-api-key` (or `?key=`):
   * without one they get Google's 403 PERMISSION_DENIED, with another its 400
   * API_KEY_INVALID.
   */
  apiKey?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The model's text for a text request; default quotes the last user message. */
  reply?: (body: Record<string, unknown>) => string;
}

/** A running fake of the Gemini API (`generativelanguage.googleapis.com`). */
export interface FakeGeminiServer {
  /** `http://127.0.0.1:<port>`: the base URL to give the SDK, which appends `/v1beta` itself. */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: FakeGeminiRequest[];
  /** Answers the next API calls with these, in order, before the handler and the defaults. */
  queueResponse(...responses: FakeGeminiResponse[]): void;
  /** Sets (or clears, with undefined) the handler consulted after the queue. */
  setHandler(handler: FakeGeminiHandler | undefined): void;
  /** The batch mode's state (the economy tier's wire), to script and inspect. */
  readonly batches: FakeGeminiBatches;
  /** Forgets recorded requests, queued responses and the handler. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * Real Gemini API error bodies (`{ error: { code, message, status, details } }`),
 * for scripting failures: `queueResponse({ status: 429, body: geminiErrorBodies.rateLimit })`.
 */
export const geminiErrorBodies = {
  /** 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID: a wrong key. */
  apiKeyInvalid: apiKeyInvalidFixture,
  /** 403 PERMISSION_DENIED: no key at all. */
  unregisteredCaller: unregisteredCallerFixture,
  /** 429 RESOURCE_EXHAUSTED: a per-minute quota, with RetryInfo 7s. */
  rateLimit: rateLimitFixture,
  /** 429 RESOURCE_EXHAUSTED: a per-day quota (RetryInfo 5s, which cannot help). */
  dailyQuota: dailyQuotaFixture,
  /** 429 RESOURCE_EXHAUSTED: prepaid credits used up. */
  creditsDepleted: creditsDepletedFixture,
  /** 400 FAILED_PRECONDITION: the free tier is unavailable, billing must be enabled. */
  billingRequired: billingRequiredFixture,
  /** 400 INVALID_ARGUMENT: the prompt is longer than the model's context. */
  contextLengthExceeded: contextLengthFixture,
  /** 400 INVALID_ARGUMENT: a bad generation setting. */
  invalidArgument: invalidArgumentFixture,
  /** 404 NOT_FOUND: an unknown model. */
  modelNotFound: modelNotFoundFixture,
  /** 500 INTERNAL. */
  internal: internalFixture,
  /** 503 UNAVAILABLE: the model is overloaded. */
  unavailable: unavailableFixture,
  /** 504 DEADLINE_EXCEEDED. */
  deadlineExceeded: deadlineExceededFixture,
} as const;

/** A 200 answer whose prompt Google blocked (`promptFeedback.blockReason`, no candidates). */
export const geminiPromptBlockedResponse = promptBlockedFixture;

/** The PNG the fake server returns from image models, as `inlineData`. */
export const fakeGeminiImagePng: Uint8Array = Uint8Array.from(
  Buffer.from(generateImageFixture.candidates[0]?.content.parts[0]?.inlineData.data ?? "", "base64"),
);

/** `models/<id>:<method>` under the API version, the way the SDK addresses a model. */
const MODEL_METHOD = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;
const MODEL_RESOURCE = /^\/v1beta\/models\/([^/:]+)$/;

/**
 * Starts a fake Gemini API on 127.0.0.1 that speaks the real wire format
 * (`:generateContent`, `:streamGenerateContent?alt=sse`, image models answering
 * with `inlineData`, the model list), checks `x-goog-api-key`, records every
 * request, and can be scripted per call. Tests drive it through the real
 * `@google/genai` SDK, so the adapter's HTTP behaviour is what runs.
 */
export async function startFakeGeminiServer(
  options: FakeGeminiServerOptions = {},
): Promise<FakeGeminiServer> {
  const requests: FakeGeminiRequest[] = [];
  const queue: FakeGeminiResponse[] = [];
  let handler: FakeGeminiHandler | undefined;
  const reply = options.reply ?? defaultReply;
  const batchApi = createFakeGeminiBatches((model, body) => {
    const chunks = textChunks(model, body, reply);
    return chunks.length === 1 ? chunks[0] : mergeChunks(chunks);
  });

  const server = createServer((incoming, outgoing) => {
    handle(incoming, outgoing).catch((error: unknown) => {
      if (!outgoing.headersSent) {
        outgoing.writeHead(500, { "content-type": "application/json; charset=UTF-8" });
        outgoing.end(JSON.stringify({ error: { code: 500, message: String(error), status: "INTERNAL" } }));
      } else {
        outgoing.destroy();
      }
    });
  });

  async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const request = await readFakeRequest(incoming);
    requests.push(request);
    const scripted = queue.shift() ?? (await handler?.(request));
    await send(incoming, outgoing, scripted ?? defaultResponse(request));
  }

  function defaultResponse(request: FakeGeminiRequest): FakeGeminiResponse {
    if (options.apiKey !== undefined) {
      const key = request.headers["x-goog-api-key"] ?? request.query.key;
      if (key === undefined) return { status: 403, body: unregisteredCallerFixture };
      if (key !== options.apiKey) return { status: 400, body: apiKeyInvalidFixture };
    }
    const batchAnswer = batchApi.handle(request);
    if (batchAnswer !== undefined) return batchAnswer;
    const body = isRecord(request.body) ? request.body : {};
    const method = MODEL_METHOD.exec(request.path);
    if (request.method === "POST" && method?.[1] !== undefined) {
      const model = decodeURIComponent(method[1]);
      const streaming = method[2] === "streamGenerateContent";
      const chunks = isImageRequest(model, body)
        ? [imageResponse(model, body)]
        : textChunks(model, body, reply);
      if (!streaming) return { body: chunks.length === 1 ? chunks[0] : mergeChunks(chunks) };
      // Without alt=sse the API streams one JSON array instead of events.
      return request.query.alt === "sse" ? { sse: chunks } : { body: chunks };
    }
    if (request.method === "GET" && request.path === "/v1beta/models") return modelsPage(request.query);
    const resource = MODEL_RESOURCE.exec(request.path);
    if (request.method === "GET" && resource?.[1] !== undefined) {
      const name = `models/${decodeURIComponent(resource[1])}`;
      const model = modelsListFixture.models.find((candidate) => candidate.name === name);
      return model === undefined
        ? {
            status: 404,
            body: { error: { code: 404, message: `Model is not found: ${name}.`, status: "NOT_FOUND" } },
          }
        : { body: model };
    }
    return {
      status: 404,
      body: {
        error: {
          code: 404,
          message: `Method not found: ${request.method} ${request.path}.`,
          status: "NOT_FOUND",
        },
      },
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    batches: batchApi.control,
    queueResponse(...responses) {
      queue.push(...responses);
    },
    setHandler(next) {
      handler = next;
    },
    reset() {
      requests.length = 0;
      queue.length = 0;
      handler = undefined;
    },
    close() {
      return closeFakeServer(server);
    },
  };
}

async function send(incoming: IncomingMessage, outgoing: ServerResponse, response: FakeGeminiResponse) {
  if (response.delayMs !== undefined) await waitUnlessClosed(incoming, response.delayMs);
  if (outgoing.destroyed) return;
  if (response.disconnect) {
    incoming.socket.destroy();
    return;
  }
  // What Google's front end sends; it has no request id header (the body's responseId is the id).
  const headers: Record<string, string> = {
    vary: "Origin, X-Origin, Referer",
    server: "scaffolding on HTTPServer2",
    "x-xss-protection": "0",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "server-timing": "gfet4t7; dur=42",
    ...response.headers,
  };
  if (response.sse !== undefined) {
    outgoing.writeHead(response.status ?? 200, { "content-type": "text/event-stream", ...headers });
    for (const event of response.sse) {
      if (response.sseDelayMs !== undefined) await waitUnlessClosed(incoming, response.sseDelayMs);
      if (outgoing.destroyed) return;
      // Google separates events with CRLF pairs.
      outgoing.write(`data: ${JSON.stringify(event)}\r\n\r\n`);
    }
    outgoing.end();
    return;
  }
  const isText = typeof response.body === "string";
  const payload =
    response.body === undefined
      ? "{}"
      : isText
        ? String(response.body)
        : JSON.stringify(response.body, null, 2);
  outgoing.writeHead(response.status ?? 200, {
    "content-type": isText ? "text/plain; charset=UTF-8" : "application/json; charset=UTF-8",
    ...headers,
  });
  outgoing.end(payload);
}

/** The answer as stream chunks: one per word, the last with the finish reason and the full usage. */
function textChunks(
  model: string,
  body: Record<string, unknown>,
  reply: (body: Record<string, unknown>) => string,
): unknown[] {
  const fullText = reply(body);
  const generationConfig = isRecord(body.generationConfig) ? body.generationConfig : {};
  const maxTokens =
    typeof generationConfig.maxOutputTokens === "number" ? generationConfig.maxOutputTokens : undefined;
  let text = maxTokens === undefined ? fullText : truncateToTokens(fullText, maxTokens);
  let finishReason = text.length < fullText.length ? "MAX_TOKENS" : "STOP";
  const stops = Array.isArray(generationConfig.stopSequences) ? generationConfig.stopSequences : [];
  for (const stop of stops) {
    const index = typeof stop === "string" && stop !== "" ? text.indexOf(stop) : -1;
    if (index !== -1) {
      text = text.slice(0, index);
      finishReason = "STOP";
    }
  }
  const promptTokens = promptTokenCount(body);
  const candidatesTokens = estimateTokens(text);
  const responseId = newResponseId();
  const [firstTemplate, lastTemplate] = streamChunksFixture;
  const promptDetails = [{ modality: "TEXT", tokenCount: promptTokens }];
  const pieces = text.match(/\S+\s*|\s+/g) ?? [""];
  return pieces.map((piece, index) => {
    const last = index === pieces.length - 1;
    const template = last ? lastTemplate : firstTemplate;
    return {
      ...template,
      candidates: [
        {
          content: { parts: [{ text: piece }], role: "model" },
          ...(last ? { finishReason } : {}),
          index: 0,
        },
      ],
      usageMetadata: last
        ? {
            promptTokenCount: promptTokens,
            candidatesTokenCount: candidatesTokens,
            totalTokenCount: promptTokens + candidatesTokens,
            promptTokensDetails: promptDetails,
          }
        : {
            promptTokenCount: promptTokens,
            totalTokenCount: promptTokens,
            promptTokensDetails: promptDetails,
          },
      modelVersion: model,
      responseId,
    };
  });
}

/** The non-streamed answer: the chunks' text joined, with the last chunk's finish reason and usage. */
function mergeChunks(chunks: unknown[]): unknown {
  const text = chunks
    .map((chunk) => {
      const candidate = isRecord(chunk) && Array.isArray(chunk.candidates) ? chunk.candidates[0] : undefined;
      const content = isRecord(candidate) ? candidate.content : undefined;
      const part = isRecord(content) && Array.isArray(content.parts) ? content.parts[0] : undefined;
      return isRecord(part) && typeof part.text === "string" ? part.text : "";
    })
    .join("");
  const last = chunks.at(-1);
  const lastCandidate = isRecord(last) && Array.isArray(last.candidates) ? last.candidates[0] : undefined;
  const firstCandidate = generateContentFixture.candidates[0];
  return {
    ...generateContentFixture,
    ...(isRecord(last) ? last : {}),
    candidates: [
      {
        ...firstCandidate,
        content: { parts: [{ text }], role: "model" },
        finishReason: isRecord(lastCandidate) ? lastCandidate.finishReason : "STOP",
      },
    ],
  };
}

function isImageRequest(model: string, body: Record<string, unknown>): boolean {
  const generationConfig = isRecord(body.generationConfig) ? body.generationConfig : {};
  const modalities = Array.isArray(generationConfig.responseModalities)
    ? generationConfig.responseModalities
    : [];
  return model.includes("image") || modalities.includes("IMAGE");
}

/** An image model's answer: the fixture's PNG, after a short text part unless only IMAGE was asked for. */
function imageResponse(model: string, body: Record<string, unknown>): unknown {
  const generationConfig = isRecord(body.generationConfig) ? body.generationConfig : {};
  const modalities = Array.isArray(generationConfig.responseModalities)
    ? generationConfig.responseModalities
    : [];
  const imageOnly = modalities.length > 0 && !modalities.includes("TEXT");
  const candidate = generateImageFixture.candidates[0];
  const imagePart = candidate?.content.parts[0];
  const promptTokens = promptTokenCount(body);
  return {
    ...generateImageFixture,
    candidates: [
      {
        ...candidate,
        content: {
          parts: imageOnly ? [imagePart] : [{ text: "Here is the image you asked for." }, imagePart],
          role: "model",
        },
      },
    ],
    usageMetadata: {
      ...generateImageFixture.usageMetadata,
      promptTokenCount: promptTokens,
      totalTokenCount: promptTokens + generateImageFixture.usageMetadata.candidatesTokenCount,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: promptTokens }],
    },
    modelVersion: model,
    responseId: newResponseId(),
  };
}

function modelsPage(query: Record<string, string>): FakeGeminiResponse {
  const pageSize = Math.max(1, Number(query.pageSize) || 50);
  const offset = query.pageToken
    ? Number(Buffer.from(query.pageToken, "base64url").toString("utf8")) || 0
    : 0;
  const models = modelsListFixture.models.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return {
    body: {
      models,
      ...(next < modelsListFixture.models.length
        ? { nextPageToken: Buffer.from(String(next)).toString("base64url") }
        : {}),
    },
  };
}

/** The texts of `contents` and `systemInstruction`, estimated the way the mock provider does. */
function promptTokenCount(body: Record<string, unknown>): number {
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const all = isRecord(body.systemInstruction) ? [...contents, body.systemInstruction] : contents;
  return all.reduce<number>((sum, content) => sum + estimateTokens(textOf(content)), 0);
}

function textOf(content: unknown): string {
  const parts = isRecord(content) && Array.isArray(content.parts) ? content.parts : [];
  return parts.map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : "")).join("");
}

function defaultReply(body: Record<string, unknown>): string {
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const lastUser = contents.findLast((content) => isRecord(content) && content.role === "user");
  return `This is a fake reply to: ${textOf(lastUser)}`;
}

/** An id shaped like Google's `responseId` (23 URL-safe base64 characters). */
function newResponseId(): string {
  return randomBytes(18).toString("base64url").slice(0, 23);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
