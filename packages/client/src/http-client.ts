import {
  type ClientErrorCode,
  ConnectionError,
  errorFromResponse,
  GenqError,
  type GenqErrorFields,
} from "./errors.ts";
import { backoffMs, retryAfterMs, sleep } from "./retry-after.ts";
import type { ErrorCode } from "./types.ts";

/** Options of {@link GenqClient} (and of its transport). */
export interface ClientOptions {
  /** Where the API is, e.g. `https://genq.example.com` (without `/v1`). */
  baseUrl: string;
  /** An API key (`Authorization: Bearer <key>`). */
  apiKey: string;
  /** The fetch to use (a test double, a proxy-aware one). @defaultValue `globalThis.fetch` */
  fetch?: typeof fetch;
  /**
   * Retries of a request answered 429 `rate_limited` or 503, or that got no answer (only
   * requests safe to repeat: reads, and writes carrying an Idempotency-Key).
   * @defaultValue 2
   */
  maxRetries?: number;
  /**
   * The longest wait before a retry. A `Retry-After` asking for more is not waited for:
   * the error is thrown at once, with `retryAfterSeconds` set.
   * @defaultValue 30000
   */
  maxRetryDelayMs?: number;
  /**
   * How long a request may take, in milliseconds (for streams: until the answer's headers).
   * @defaultValue 60000
   */
  timeoutMs?: number;
  /** Headers sent with every request (besides Authorization). */
  headers?: Record<string, string>;
}

/** Per-call options of every method. */
export interface RequestOptions {
  /** Aborts the request (and any retry wait). */
  signal?: AbortSignal | undefined;
  /** Overrides {@link ClientOptions.timeoutMs} for this call. */
  timeoutMs?: number | undefined;
}

/** One request for {@link HttpClient}. */
export interface HttpRequest extends RequestOptions {
  method: "GET" | "POST" | "DELETE" | "PATCH";
  path: string;
  query?: Record<string, string | number | boolean | readonly string[] | undefined> | undefined;
  /** A JSON body (serialized here). */
  json?: unknown;
  /** Any other body, sent as it is; a stream is sent once (never retried). */
  body?: RequestInit["body"] | undefined;
  headers?: Record<string, string> | undefined;
  /** Whether the caller reads the body as a stream: the timeout then ends with the headers. */
  stream?: boolean;
}

const RETRY_BASE_MS = 500;
const FALLBACK_CODES: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "service_unavailable",
};

/**
 * The transport under every resource: URL and auth, JSON in and out, timeouts, retries of
 * 429 `rate_limited` and 503 honouring `Retry-After` (bounded), and API errors turned into
 * {@link GenqError}s. Only web-standard APIs (fetch, AbortSignal), so it runs in browsers,
 * edge runtimes and Node 20+.
 */
export class HttpClient {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #maxRetries: number;
  readonly #maxRetryDelayMs: number;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;

  constructor(options: ClientOptions) {
    if (typeof options.baseUrl !== "string" || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError("baseUrl must be an http(s) URL such as https://genq.example.com");
    }
    if (typeof options.apiKey !== "string" || options.apiKey === "") {
      throw new TypeError("apiKey is required (an API key of your genq account)");
    }
    const settings = { maxRetries: 2, maxRetryDelayMs: 30_000, timeoutMs: 60_000, headers: {}, ...options };
    this.baseUrl = settings.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
    this.#apiKey = settings.apiKey;
    this.#fetch = settings.fetch ?? globalThis.fetch.bind(globalThis);
    this.#maxRetries = settings.maxRetries;
    this.#maxRetryDelayMs = settings.maxRetryDelayMs;
    this.#timeoutMs = settings.timeoutMs;
    this.#headers = settings.headers;
  }

  /** Sends a request and parses its JSON answer. */
  async json<T>(request: HttpRequest): Promise<T> {
    const response = await this.send(request);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new GenqError(`the API answered ${response.status} with a body that is not JSON`, {
        status: response.status,
        code: "invalid_response",
        requestId: response.headers.get("x-request-id") ?? undefined,
        cause: error,
      });
    }
  }

  /** Sends a request, retrying what may be retried; resolves with a 2xx response, else throws. */
  async send(request: HttpRequest): Promise<Response> {
    const repeatable = isRepeatable(request);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#sendOnce(request);
      } catch (error) {
        const failure = toConnectionError(error, request.signal);
        if (failure.code !== "connection_error" || !repeatable || attempt >= this.#maxRetries) throw failure;
        await sleep(backoffMs(attempt, RETRY_BASE_MS, this.#maxRetryDelayMs), request.signal);
        continue;
      }
      if (response.ok) return response;
      const error = await readError(response);
      const retryable = error.code === "rate_limited" || response.status === 503;
      if (!retryable || !repeatable || attempt >= this.#maxRetries) throw error;
      const asked = error.retryAfterSeconds === undefined ? undefined : error.retryAfterSeconds * 1_000;
      // A wait longer than the bound is the caller's decision, not ours: give the error back now.
      if (asked !== undefined && asked > this.#maxRetryDelayMs) throw error;
      await sleep(asked ?? backoffMs(attempt, RETRY_BASE_MS, this.#maxRetryDelayMs), request.signal);
    }
  }

  async #sendOnce(request: HttpRequest): Promise<Response> {
    const url = new URL(`${this.baseUrl}${request.path}`);
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value === undefined) continue;
      // A repeatable parameter (`metadata=customer:acme&metadata=tier:gold`) is an array.
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(name, String(item));
      else url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {
      accept: "application/json",
      ...this.#headers,
      ...request.headers,
      authorization: `Bearer ${this.#apiKey}`,
    };
    let body = request.body;
    if (request.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(request.json);
    }
    const timeout = new AbortController();
    const timeoutMs = request.timeoutMs ?? this.#timeoutMs;
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
      timeoutMs,
    );
    const signal =
      request.signal === undefined ? timeout.signal : AbortSignal.any([request.signal, timeout.signal]);
    const init: RequestInit & { duplex?: "half" } = { method: request.method, headers, signal };
    if (body !== undefined) {
      init.body = body;
      // A streamed request body needs half duplex (fetch's rule, enforced by Node's).
      if (body instanceof ReadableStream) init.duplex = "half";
    }
    try {
      const response = await this.#fetch(url, init);
      if (!request.stream) {
        // Read within the timeout: the caller gets a response whose body is already here.
        const buffered = await response.arrayBuffer();
        return new Response(response.status === 204 ? null : buffered, {
          status: response.status,
          statusText: response.statusText,
          headers: response.headers,
        });
      }
      return response;
    } finally {
      clearTimeout(timer);
    }
  }
}

function isRepeatable(request: HttpRequest): boolean {
  if (request.body instanceof ReadableStream) return false;
  if (request.method === "GET") return true;
  return request.headers?.["idempotency-key"] !== undefined;
}

/** The {@link GenqError} of a non-2xx answer: the API's `{error: {code, message}}`, or the status alone. */
async function readError(response: Response): Promise<GenqError> {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const delay = retryAfterMs(response.headers.get("retry-after"));
  const retryAfterSeconds = delay === undefined ? undefined : Math.ceil(delay / 1_000);
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    parsed = (await response.json()) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  const body = parsed?.error;
  const fields: GenqErrorFields = {
    status: response.status,
    code:
      typeof body?.code === "string"
        ? (body.code as ErrorCode)
        : (FALLBACK_CODES[response.status] ?? "internal_error"),
    requestId,
    retryAfterSeconds,
    details:
      typeof body?.details === "object" && body.details !== null
        ? (body.details as Record<string, unknown>)
        : undefined,
  };
  const message =
    typeof body?.message === "string"
      ? body.message
      : `the API answered ${response.status} ${response.statusText}`;
  return errorFromResponse(message, fields);
}

/** The error for a fetch that threw: aborted by the caller, timed out, or no connection. */
export function toConnectionError(error: unknown, callerSignal: AbortSignal | undefined): GenqError {
  if (GenqError.is(error)) return error;
  let code: ClientErrorCode = "connection_error";
  let message = `could not reach the genq API: ${(error as Error)?.message ?? String(error)}`;
  if (callerSignal?.aborted) {
    code = "aborted";
    message = "the request was aborted";
  } else if ((error as Error)?.name === "TimeoutError") {
    code = "timeout";
    message = (error as Error).message;
  }
  return new ConnectionError(message, { status: 0, code, cause: error });
}
