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
import chatCompletionFixture from "../__fixtures__/chat-completion.json" with { type: "json" };
import chatCompletionChunkFixture from "../__fixtures__/chat-completion-chunk.json" with { type: "json" };
import contentPolicyFixture from "../__fixtures__/error-content-policy.json" with { type: "json" };
import contextLengthFixture from "../__fixtures__/error-context-length.json" with { type: "json" };
import insufficientQuotaFixture from "../__fixtures__/error-insufficient-quota.json" with { type: "json" };
import invalidApiKeyFixture from "../__fixtures__/error-invalid-api-key.json" with { type: "json" };
import rateLimitFixture from "../__fixtures__/error-rate-limit.json" with { type: "json" };
import serverErrorFixture from "../__fixtures__/error-server.json" with { type: "json" };
import imageGenerationFixture from "../__fixtures__/image-generation.json" with { type: "json" };
import modelsListFixture from "../__fixtures__/models-list.json" with { type: "json" };
import { createFakeOpenAIBatches, type FakeOpenAIBatches } from "./fake-openai-batches.ts";

/** One request the fake received. */
export type FakeOpenAIRequest = RecordedRequest;

/** A scripted answer. Every field is optional; an empty object is `200 {}`. */
export interface FakeOpenAIResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** A JSON value (sent as JSON) or a string (sent as is). */
  body?: unknown;
  /** Send these as server-sent events (`data: <json>`), then `data: [DONE]`, instead of `body`. */
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
export type FakeOpenAIHandler = (
  request: FakeOpenAIRequest,
) => FakeOpenAIResponse | undefined | Promise<FakeOpenAIResponse | undefined>;

/** Options for {@link startFakeOpenAIServer}. */
export interface FakeOpenAIServerOptions {
  /** When set, requests without `Authorization: Bearer <apiKey>` get OpenAI's 401. */
  apiKey?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The assistant's text for a chat request; default quotes the last user message. */
  reply?: (body: Record<string, unknown>) => string;
}

/** A running fake of the OpenAI HTTP API. */
export interface FakeOpenAIServer {
  /** The base URL to give the SDK, ending in `/v1`. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`, for building image URLs the server serves under `/files/`. */
  readonly origin: string;
  /** Every request received, in order (including `/files/` downloads). */
  readonly requests: FakeOpenAIRequest[];
  /** Answers the next API calls with these, in order, before the handler and the defaults. */
  queueResponse(...responses: FakeOpenAIResponse[]): void;
  /** Sets (or clears, with undefined) the handler consulted after the queue. */
  setHandler(handler: FakeOpenAIHandler | undefined): void;
  /** The Files and Batches API's state (the economy tier's wire), to script and inspect. */
  readonly batches: FakeOpenAIBatches;
  /** Forgets recorded requests, queued responses and the handler. */
  reset(): void;
  close(): Promise<void>;
}

/** Real OpenAI error bodies, for scripting failures: `queueResponse({ status: 429, body: openAIErrorBodies.insufficientQuota })`. */
export const openAIErrorBodies = {
  insufficientQuota: insufficientQuotaFixture,
  rateLimit: rateLimitFixture,
  contextLengthExceeded: contextLengthFixture,
  invalidApiKey: invalidApiKeyFixture,
  serverError: serverErrorFixture,
  contentPolicyViolation: contentPolicyFixture,
} as const;

/** The PNG the fake server returns from image generations and serves under `/files/`. */
export const fakeImagePng: Uint8Array = Uint8Array.from(
  Buffer.from(imageGenerationFixture.data[0]?.b64_json ?? "", "base64"),
);

/**
 * Starts a fake OpenAI API on 127.0.0.1 that speaks the real wire format
 * (chat completions with and without SSE streaming, image generations, edits and
 * variations, the model list), records every request, and can be scripted per call. Tests drive
 * it through the real `openai` SDK, so the adapter's HTTP behaviour is what runs.
 */
export async function startFakeOpenAIServer(
  options: FakeOpenAIServerOptions = {},
): Promise<FakeOpenAIServer> {
  const requests: FakeOpenAIRequest[] = [];
  const queue: FakeOpenAIResponse[] = [];
  let handler: FakeOpenAIHandler | undefined;
  const reply = options.reply ?? defaultReply;
  const batchApi = createFakeOpenAIBatches((body) => chatCompletion(body, reply(body)).body);

  const server = createServer((incoming, outgoing) => {
    handle(incoming, outgoing).catch((error: unknown) => {
      if (!outgoing.headersSent) {
        outgoing.writeHead(500, { "content-type": "application/json" });
        outgoing.end(JSON.stringify({ error: { message: String(error), type: "server_error" } }));
      } else {
        outgoing.destroy();
      }
    });
  });

  async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const request = await readFakeRequest(incoming);
    requests.push(request);

    if (request.method === "GET" && request.path.startsWith("/files/")) {
      outgoing.writeHead(200, { "content-type": "image/png", "content-length": fakeImagePng.byteLength });
      outgoing.end(fakeImagePng);
      return;
    }

    const scripted = queue.shift() ?? (await handler?.(request));
    const response = scripted ?? defaultResponse(request);
    await send(incoming, outgoing, response);
  }

  function defaultResponse(request: FakeOpenAIRequest): FakeOpenAIResponse {
    if (options.apiKey !== undefined && request.headers.authorization !== `Bearer ${options.apiKey}`) {
      return { status: 401, body: invalidApiKeyFixture };
    }
    const body = isRecord(request.body) ? request.body : {};
    const route = `${request.method} ${request.path}`;
    if (route === "POST /v1/chat/completions") return chatCompletion(body, reply(body));
    // Edits and variations are multipart; they answer in the generations' format.
    if (
      route === "POST /v1/images/generations" ||
      route === "POST /v1/images/edits" ||
      route === "POST /v1/images/variations"
    ) {
      return imageGeneration(body);
    }
    if (route === "GET /v1/models") return { body: modelsListFixture };
    const batchAnswer = batchApi.handle(request);
    if (batchAnswer !== undefined) return batchAnswer;
    return {
      status: 404,
      body: {
        error: {
          message: `Invalid URL (${request.method} ${request.path})`,
          type: "invalid_request_error",
          param: null,
          code: null,
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
  const origin = `http://127.0.0.1:${port}`;

  return {
    url: `${origin}/v1`,
    origin,
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

async function send(incoming: IncomingMessage, outgoing: ServerResponse, response: FakeOpenAIResponse) {
  if (response.delayMs !== undefined) await waitUnlessClosed(incoming, response.delayMs);
  if (outgoing.destroyed) return;
  if (response.disconnect) {
    incoming.socket.destroy();
    return;
  }
  const headers: Record<string, string> = {
    "x-request-id": `req_${randomBytes(16).toString("hex")}`,
    "openai-processing-ms": "42",
    "openai-version": "2020-10-01",
    ...response.headers,
  };
  if (response.sse !== undefined) {
    outgoing.writeHead(response.status ?? 200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      ...headers,
    });
    for (const event of response.sse) {
      if (response.sseDelayMs !== undefined) await waitUnlessClosed(incoming, response.sseDelayMs);
      if (outgoing.destroyed) return;
      outgoing.write(`data: ${JSON.stringify(event)}\n\n`);
    }
    outgoing.end("data: [DONE]\n\n");
    return;
  }
  const isText = typeof response.body === "string";
  const payload =
    response.body === undefined ? "{}" : isText ? String(response.body) : JSON.stringify(response.body);
  outgoing.writeHead(response.status ?? 200, {
    "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
    ...headers,
  });
  outgoing.end(payload);
}

function chatCompletion(body: Record<string, unknown>, fullText: string): FakeOpenAIResponse {
  const model = typeof body.model === "string" ? body.model : chatCompletionFixture.model;
  const maxTokens = numberField(body, "max_completion_tokens") ?? numberField(body, "max_tokens");
  const text = maxTokens === undefined ? fullText : truncateToTokens(fullText, maxTokens);
  const finishReason = text.length < fullText.length ? "length" : "stop";
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const promptTokens = messages.reduce<number>(
    (sum, message) =>
      sum + (isRecord(message) && typeof message.content === "string" ? estimateTokens(message.content) : 0),
    0,
  );
  const completionTokens = estimateTokens(text);
  const usage = {
    ...chatCompletionFixture.usage,
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  const id = `chatcmpl-${randomBytes(15).toString("base64url")}`;
  const created = Math.floor(Date.now() / 1000);

  if (body.stream === true) {
    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
    const base = {
      ...chatCompletionChunkFixture,
      id,
      created,
      model,
      ...(includeUsage ? {} : { usage: undefined }),
    };
    const firstChoice = chatCompletionChunkFixture.choices[0];
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      ...base,
      choices: [{ ...firstChoice, delta, finish_reason: finish }],
    });
    const pieces = text.match(/\S+\s*|\s+/g) ?? [];
    return {
      sse: [
        chunk({ role: "assistant", content: "", refusal: null }, null),
        ...pieces.map((piece) => chunk({ content: piece }, null)),
        chunk({}, finishReason),
        ...(includeUsage ? [{ ...base, choices: [], usage }] : []),
      ],
    };
  }

  const firstChoice = chatCompletionFixture.choices[0];
  return {
    body: {
      ...chatCompletionFixture,
      id,
      created,
      model,
      choices: [
        { ...firstChoice, message: { ...firstChoice?.message, content: text }, finish_reason: finishReason },
      ],
      usage,
    },
  };
}

function imageGeneration(body: Record<string, unknown>): FakeOpenAIResponse {
  // Multipart fields (edits, variations) arrive as text.
  const count = numberField(body, "n") ?? (typeof body.n === "string" ? Number(body.n) : 1);
  const image = imageGenerationFixture.data[0];
  return {
    body: {
      ...imageGenerationFixture,
      created: Math.floor(Date.now() / 1000),
      data: Array.from({ length: count }, () => ({ ...image })),
    },
  };
}

function defaultReply(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const lastUser = messages.findLast((message) => isRecord(message) && message.role === "user");
  const content = isRecord(lastUser) && typeof lastUser.content === "string" ? lastUser.content : "";
  return `This is a fake reply to: ${content}`;
}

function numberField(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field];
  return typeof value === "number" ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
