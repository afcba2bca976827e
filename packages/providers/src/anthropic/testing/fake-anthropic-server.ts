import { randomInt } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { estimateTokens, truncateToTokens } from "../../estimate-tokens.ts";
import {
  closeFakeServer,
  type RecordedRequest,
  readFakeRequest,
  waitUnlessClosed,
} from "../../testing/fake-server-support.ts";
import apiErrorFixture from "../__fixtures__/error-api.json" with { type: "json" };
import authenticationFixture from "../__fixtures__/error-authentication.json" with { type: "json" };
import creditBalanceFixture from "../__fixtures__/error-credit-balance.json" with { type: "json" };
import notFoundFixture from "../__fixtures__/error-not-found.json" with { type: "json" };
import overloadedFixture from "../__fixtures__/error-overloaded.json" with { type: "json" };
import permissionFixture from "../__fixtures__/error-permission.json" with { type: "json" };
import promptTooLongFixture from "../__fixtures__/error-prompt-too-long.json" with { type: "json" };
import rateLimitFixture from "../__fixtures__/error-rate-limit.json" with { type: "json" };
import messageFixture from "../__fixtures__/message.json" with { type: "json" };
import messageStreamFixture from "../__fixtures__/message-stream.json" with { type: "json" };
import modelsListFixture from "../__fixtures__/models-list.json" with { type: "json" };
import { createFakeAnthropicBatches, type FakeAnthropicBatches } from "./fake-anthropic-batches.ts";

/** One request the fake received. */
export type FakeAnthropicRequest = RecordedRequest;

/** One server-sent event as the Messages API writes it: `event: <event>` then `data: <json>`. */
export interface FakeAnthropicServerSentEvent {
  event: string;
  data: unknown;
}

/**
 * Fields merged over the message the server would have answered (wire names:
 * `content`, `stop_reason`, `stop_sequence`, `model`, `id`); `usage` is merged
 * field by field. Rendered as JSON, or as the event stream when the request
 * asked for `stream: true`, so one script serves both kinds of call.
 */
export type FakeAnthropicMessageOverrides = Record<string, unknown> & { usage?: Record<string, unknown> };

/** A scripted answer. Every field is optional; an empty object is `200 {}`. */
export interface FakeAnthropicResponse {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /**
   * A JSON value (sent as JSON) or a string (sent as is). An error body
   * (`type: "error"`) gets the response's request id as its `request_id`, as the API does.
   */
  body?: unknown;
  /** Answer a `POST /v1/messages` with the default message changed by these fields. */
  message?: FakeAnthropicMessageOverrides;
  /** Send these server-sent events instead of `body` (see {@link toAnthropicStreamEvents}). */
  events?: FakeAnthropicServerSentEvent[];
  /** Wait this long before answering (to test timeouts and cancellation). */
  delayMs?: number;
  /** Wait this long between server-sent events (to cancel a stream half way). */
  eventDelayMs?: number;
  /** Drop the connection without answering (a network failure). */
  disconnect?: boolean;
}

/**
 * Decides the answer to one request; `undefined` falls through to the default
 * behaviour (a realistic answer built from the fixtures).
 */
export type FakeAnthropicHandler = (
  request: FakeAnthropicRequest,
) => FakeAnthropicResponse | undefined | Promise<FakeAnthropicResponse | undefined>;

/** Options for {@link startFakeAnthropicServer}. */
export interface FakeAnthropicServerOptions {
  /**
   * When set, requests carrying neither `x-api-key: <apiKey>` nor
   * `Authorization: Bearer <apiKey>` get Anthropic's 401 `authentication_error`.
   */
  apiKey?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The assistant's text for a message request; default quotes the last user message. */
  reply?: (body: Record<string, unknown>) => string;
}

/** A running fake of the Anthropic HTTP API. */
export interface FakeAnthropicServer {
  /** `http://127.0.0.1:<port>`: the SDK's `baseURL` (it adds `/v1/...` itself). */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: FakeAnthropicRequest[];
  /** Answers the next API calls with these, in order, before the handler and the defaults. */
  queueResponse(...responses: FakeAnthropicResponse[]): void;
  /** Sets (or clears, with undefined) the handler consulted after the queue. */
  setHandler(handler: FakeAnthropicHandler | undefined): void;
  /** The Message Batches API's state (the economy tier's wire), to script and inspect. */
  readonly batches: FakeAnthropicBatches;
  /** Forgets recorded requests, queued responses and the handler. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * Real Anthropic error bodies, for scripting failures:
 * `queueResponse({ status: 429, body: anthropicErrorBodies.rateLimit, headers: { "retry-after": "3" } })`.
 * Statuses as the API sends them: rateLimit 429, overloaded 529, authentication 401,
 * permission 403, creditBalance 400, promptTooLong 400, notFound 404, api 500.
 */
export const anthropicErrorBodies = {
  rateLimit: rateLimitFixture,
  overloaded: overloadedFixture,
  authentication: authenticationFixture,
  permission: permissionFixture,
  creditBalance: creditBalanceFixture,
  promptTooLong: promptTooLongFixture,
  notFound: notFoundFixture,
  api: apiErrorFixture,
} as const;

/** The characters of Anthropic's ids after their prefix (base58-like, no 0/O/I/l). */
const ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function randomId(prefix: string, length: number): string {
  let id = prefix;
  for (let index = 0; index < length; index += 1) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

/**
 * Starts a fake Anthropic API on 127.0.0.1 that speaks the real wire format
 * (`POST /v1/messages` as JSON and as server-sent events, `GET /v1/models`),
 * records every request, and can be scripted per call. Tests drive it through
 * the real `@anthropic-ai/sdk`, so the adapter's HTTP behaviour is what runs.
 */
export async function startFakeAnthropicServer(
  options: FakeAnthropicServerOptions = {},
): Promise<FakeAnthropicServer> {
  const requests: FakeAnthropicRequest[] = [];
  const queue: FakeAnthropicResponse[] = [];
  let handler: FakeAnthropicHandler | undefined;
  const reply = options.reply ?? defaultReply;
  let origin = "";
  const batchApi = createFakeAnthropicBatches(
    () => origin,
    (params) => buildMessage(params, reply(params), {}),
  );

  const server = createServer((incoming, outgoing) => {
    handle(incoming, outgoing).catch((error: unknown) => {
      if (!outgoing.headersSent) {
        outgoing.writeHead(500, { "content-type": "application/json" });
        outgoing.end(JSON.stringify(errorBody("api_error", String(error))));
      } else {
        outgoing.destroy();
      }
    });
  });

  async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const request = await readFakeRequest(incoming);
    requests.push(request);
    const scripted = queue.shift() ?? (await handler?.(request));
    await send(incoming, outgoing, request, scripted ?? defaultResponse(request));
  }

  function defaultResponse(request: FakeAnthropicRequest): FakeAnthropicResponse {
    if (options.apiKey !== undefined && !isAuthorized(request, options.apiKey)) {
      return { status: 401, body: authenticationFixture };
    }
    if (request.headers["anthropic-version"] === undefined) {
      return {
        status: 400,
        body: errorBody("invalid_request_error", "anthropic-version: header is required"),
      };
    }
    const route = `${request.method} ${request.path}`;
    if (route === "POST /v1/messages") return { message: {} };
    if (route === "GET /v1/models") return { body: modelsListFixture };
    const batchAnswer = batchApi.handle(request);
    if (batchAnswer !== undefined) return batchAnswer;
    return { status: 404, body: errorBody("not_found_error", "Not Found") };
  }

  /** Builds the message for a `POST /v1/messages`, or the 400 the API gives for a malformed one. */
  function messageResponse(request: FakeAnthropicRequest, overrides: FakeAnthropicMessageOverrides) {
    const body = isRecord(request.body) ? request.body : {};
    for (const field of ["model", "max_tokens", "messages"]) {
      if (body[field] === undefined) {
        return { status: 400, body: errorBody("invalid_request_error", `${field}: Field required`) };
      }
    }
    const message = buildMessage(body, reply(body), overrides);
    return body.stream === true ? { events: toAnthropicStreamEvents(message) } : { body: message };
  }

  async function send(
    incoming: IncomingMessage,
    outgoing: ServerResponse,
    request: FakeAnthropicRequest,
    response: FakeAnthropicResponse,
  ): Promise<void> {
    if (response.delayMs !== undefined) await waitUnlessClosed(incoming, response.delayMs);
    if (outgoing.destroyed) return;
    if (response.disconnect) {
      incoming.socket.destroy();
      return;
    }
    const rendered =
      response.message === undefined
        ? response
        : { ...response, ...messageResponse(request, response.message), message: undefined };
    const headers: Record<string, string> = {
      "request-id": randomId("req_011C", 20),
      "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
      ...rendered.headers,
    };

    if (rendered.events !== undefined) {
      outgoing.writeHead(rendered.status ?? 200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        ...headers,
      });
      for (const event of rendered.events) {
        if (rendered.eventDelayMs !== undefined) await waitUnlessClosed(incoming, rendered.eventDelayMs);
        if (outgoing.destroyed) return;
        outgoing.write(`event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`);
      }
      outgoing.end();
      return;
    }

    const isText = typeof rendered.body === "string";
    // The API repeats the request id inside every error body.
    const body =
      isRecord(rendered.body) && rendered.body.type === "error"
        ? { ...rendered.body, request_id: headers["request-id"] }
        : rendered.body;
    const payload = body === undefined ? "{}" : isText ? String(body) : JSON.stringify(body);
    outgoing.writeHead(rendered.status ?? 200, {
      "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
      ...headers,
    });
    outgoing.end(payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
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

/**
 * The event stream the Messages API sends for `message`, in the real order:
 * `message_start` (usage so far, no content), per content block
 * `content_block_start` / `content_block_delta`s / `content_block_stop` (with a
 * `ping` after the first start), `message_delta` (stop reason, cumulative usage)
 * and `message_stop`. Text is split into word-sized deltas. Tests can cut or
 * edit the result to fake a broken stream.
 */
export function toAnthropicStreamEvents(message: Record<string, unknown>): FakeAnthropicServerSentEvent[] {
  const [startTemplate] = messageStreamFixture;
  const usage = isRecord(message.usage) ? message.usage : {};
  const startMessage = {
    ...(isRecord(startTemplate?.data.message) ? startTemplate.data.message : {}),
    id: message.id,
    model: message.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    // The opening event reports the input in full but only a token or so of output.
    usage: { ...usage, output_tokens: Math.min(1, numberOr(usage.output_tokens, 0)) },
  };
  const events: FakeAnthropicServerSentEvent[] = [
    { event: "message_start", data: { type: "message_start", message: startMessage } },
  ];
  const blocks = Array.isArray(message.content) ? message.content : [];
  blocks.forEach((block: unknown, index) => {
    if (!isRecord(block)) return;
    events.push({
      event: "content_block_start",
      data: { type: "content_block_start", index, content_block: emptyBlock(block) },
    });
    if (index === 0) events.push({ event: "ping", data: { type: "ping" } });
    for (const delta of blockDeltas(block)) {
      events.push({ event: "content_block_delta", data: { type: "content_block_delta", index, delta } });
    }
    events.push({ event: "content_block_stop", data: { type: "content_block_stop", index } });
  });
  const deltaUsage: Record<string, unknown> = {};
  for (const field of [
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "output_tokens_details",
    "server_tool_use",
  ]) {
    if (usage[field] !== undefined) deltaUsage[field] = usage[field];
  }
  events.push(
    {
      event: "message_delta",
      data: {
        type: "message_delta",
        delta: { stop_reason: message.stop_reason ?? null, stop_sequence: message.stop_sequence ?? null },
        usage: deltaUsage,
      },
    },
    { event: "message_stop", data: { type: "message_stop" } },
  );
  return events;
}

/** A content block as `content_block_start` announces it: its kind, without the content. */
function emptyBlock(block: Record<string, unknown>): Record<string, unknown> {
  switch (block.type) {
    case "text":
      return { ...block, text: "" };
    case "thinking":
      return { ...block, thinking: "", signature: "" };
    case "tool_use":
      return { ...block, input: {} };
    default:
      return block;
  }
}

/** The deltas that rebuild a block's content. */
function blockDeltas(block: Record<string, unknown>): Array<Record<string, unknown>> {
  switch (block.type) {
    case "text":
      return splitWords(String(block.text ?? "")).map((text) => ({ type: "text_delta", text }));
    case "thinking":
      return [
        ...splitWords(String(block.thinking ?? "")).map((thinking) => ({ type: "thinking_delta", thinking })),
        { type: "signature_delta", signature: String(block.signature ?? "") },
      ];
    case "tool_use":
      return [{ type: "input_json_delta", partial_json: JSON.stringify(block.input ?? {}) }];
    default:
      return [];
  }
}

function splitWords(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

/**
 * The message the server answers for a request: the reply cut at the first stop
 * sequence or at `max_tokens`, with the stop reason and usage that cut implies,
 * then `overrides` on top.
 */
function buildMessage(
  body: Record<string, unknown>,
  fullReply: string,
  overrides: FakeAnthropicMessageOverrides,
): Record<string, unknown> {
  let text = fullReply;
  let stopReason = "end_turn";
  let stopSequence: string | null = null;
  const stopSequences = Array.isArray(body.stop_sequences) ? body.stop_sequences : [];
  for (const candidate of stopSequences) {
    if (typeof candidate !== "string" || candidate === "") continue;
    const at = text.indexOf(candidate);
    if (at >= 0) {
      text = text.slice(0, at);
      stopReason = "stop_sequence";
      stopSequence = candidate;
    }
  }
  const maxTokens = numberOr(body.max_tokens, Number.POSITIVE_INFINITY);
  if (estimateTokens(text) > maxTokens) {
    text = truncateToTokens(text, maxTokens);
    stopReason = "max_tokens";
    stopSequence = null;
  }
  const usage = {
    ...messageFixture.usage,
    input_tokens: inputTokens(body),
    output_tokens: estimateTokens(text),
    ...overrides.usage,
  };
  return {
    ...messageFixture,
    id: randomId("msg_01", 22),
    model: typeof body.model === "string" ? body.model : messageFixture.model,
    content: [{ type: "text", text }],
    stop_reason: stopReason,
    stop_sequence: stopSequence,
    ...overrides,
    usage,
  };
}

/** Estimated tokens in the system prompt and every text part of the messages. */
function inputTokens(body: Record<string, unknown>): number {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  return messages.reduce<number>(
    (sum, message) => sum + (isRecord(message) ? estimateTokens(textOf(message.content)) : 0),
    estimateTokens(textOf(body.system)),
  );
}

/** The text of a string or of an array of `{ type: "text", text }` blocks. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((block) => (isRecord(block) && typeof block.text === "string" ? block.text : ""))
    .join("");
}

function errorBody(type: string, message: string) {
  return { type: "error", error: { type, message }, request_id: null };
}

function isAuthorized(request: FakeAnthropicRequest, apiKey: string): boolean {
  return request.headers["x-api-key"] === apiKey || request.headers.authorization === `Bearer ${apiKey}`;
}

function defaultReply(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const lastUser = messages.findLast((message) => isRecord(message) && message.role === "user");
  return `This is a fake reply to: ${isRecord(lastUser) ? textOf(lastUser.content) : ""}`;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === "number" ? value : fallback;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
