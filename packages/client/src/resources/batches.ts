import type { HttpClient, RequestOptions } from "../http-client.ts";
import { type JsonlSource, readJsonLines, toJsonlBody } from "../jsonl.ts";
import type {
  Batch,
  BatchAccepted,
  BatchItemResult,
  BatchOptions,
  BatchPage,
  BatchStatus,
  CreateBatchRequest,
  JobStatus,
} from "../types.ts";
import { type EventsResource, isTerminalEvent } from "./events.ts";
import type { CreateOptions } from "./jobs.ts";
import { type WaitOptions, waitFor } from "./wait-for.ts";

/**
 * A batch whose items are streamed as JSONL: the options as for JSON, and `jsonl` the
 * items (each a job `input`), from text, bytes, a stream or an (async) iterable.
 */
export type JsonlBatchRequest = BatchOptions & { jsonl: JsonlSource };

/** Filters and page of `batches.list`. */
export interface ListBatchesQuery {
  status?: BatchStatus;
  cursor?: string;
  limit?: number;
}

/** `/v1/batches`: submit many items at once, follow them, read their results, cancel them. */
export class BatchesResource {
  readonly #http: HttpClient;
  readonly #events: EventsResource;

  constructor(http: HttpClient, events: EventsResource) {
    this.#http = http;
    this.#events = events;
  }

  /**
   * Submits a batch: `{type, items: [...]}` as JSON, or `{type, jsonl}` streamed as JSONL
   * (for large batches; the request body is never held whole in memory). Each item is
   * checked on its own: rejected ones are listed in `invalidItems`, the rest run.
   * A streamed body is sent once (the client does not retry it).
   */
  create(
    request: CreateBatchRequest | JsonlBatchRequest,
    options: CreateOptions = {},
  ): Promise<BatchAccepted> {
    const headers = { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() };
    const common = {
      method: "POST" as const,
      path: "/v1/batches",
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    };
    if (!("jsonl" in request)) return this.#http.json({ ...common, json: request, headers });
    const { jsonl, ...batchOptions } = request;
    return this.#http.json({
      ...common,
      query: {
        type: batchOptions.type,
        priority: batchOptions.priority,
        provider: batchOptions.provider,
        model: batchOptions.model,
        webhookUrl: batchOptions.webhook?.url,
        metadata: batchOptions.metadata === undefined ? undefined : JSON.stringify(batchOptions.metadata),
      },
      body: toJsonlBody(jsonl),
      headers: { ...headers, "content-type": "application/x-ndjson" },
    });
  }

  /** A batch: counts by status, progress and an ETA. */
  get(id: string, options: RequestOptions = {}): Promise<Batch> {
    return this.#http.json({ method: "GET", path: `/v1/batches/${encodeURIComponent(id)}`, ...options });
  }

  /** A page of the caller's batches, newest first. */
  list(query: ListBatchesQuery = {}, options: RequestOptions = {}): Promise<BatchPage> {
    return this.#http.json({ method: "GET", path: "/v1/batches", query: { ...query }, ...options });
  }

  /** Cancels every item not started yet; running ones finish. */
  cancel(id: string, options: RequestOptions = {}): Promise<Batch> {
    return this.#http.json({
      method: "POST",
      path: `/v1/batches/${encodeURIComponent(id)}/cancel`,
      ...options,
    });
  }

  /**
   * The batch's items with their outcomes, in item order, read as a JSONL stream (one
   * request, whatever the batch's size). `status` keeps only items of that status.
   */
  async *results(
    id: string,
    options: RequestOptions & { status?: JobStatus | undefined } = {},
  ): AsyncGenerator<BatchItemResult> {
    const response = await this.#http.send({
      method: "GET",
      path: `/v1/batches/${encodeURIComponent(id)}/results.jsonl`,
      query: { status: options.status },
      headers: { accept: "application/x-ndjson" },
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      stream: true,
    });
    if (response.body === null) return;
    yield* readJsonLines<BatchItemResult>(response.body);
  }

  /** Waits until the batch is `completed` or `canceled` (batch events, else polling). */
  wait(id: string, options: WaitOptions = {}): Promise<Batch> {
    return waitFor(
      {
        what: `batch ${id}`,
        read: (signal) => this.get(id, { signal }),
        finished: (batch) => batch.status !== "running",
        events: (signal) => this.#events.streamBatch(id, { signal }),
        terminal: isTerminalEvent,
      },
      options,
    );
  }
}
