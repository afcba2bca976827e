import { ConnectionError, GenqError } from "../errors.ts";
import type { HttpClient, RequestOptions } from "../http-client.ts";
import { sleep } from "../retry-after.ts";
import { readServerSentEvents } from "../sse-reader.ts";
import type { JobEvent, LiveEvent } from "../types.ts";

/** Options of {@link EventsResource.stream}. */
export interface StreamEventsOptions extends Pick<RequestOptions, "signal"> {
  /** Start after this event (an `id` seen earlier): nothing before it is sent again. */
  lastEventId?: string | undefined;
  /**
   * Reconnections in a row without receiving an event before giving up (a dropped
   * connection is resumed with `Last-Event-ID`, after the delay the server asks for).
   * @defaultValue 5
   */
  maxReconnects?: number | undefined;
  /** The longest delay between reconnections, whatever the server's `retry:` says. @defaultValue 5000 */
  maxReconnectDelayMs?: number | undefined;
}

const TERMINAL_EVENTS: ReadonlySet<string> = new Set([
  "job.completed",
  "job.failed",
  "job.canceled",
  "batch.completed",
]);

/** Whether an event is the last of its stream (the job or batch finished). */
export function isTerminalEvent(event: Pick<JobEvent, "type">): boolean {
  return TERMINAL_EVENTS.has(event.type);
}

/**
 * Live events of jobs and batches (server-sent events read over fetch, so the API key
 * goes in the Authorization header, which `EventSource` cannot send).
 */
export class EventsResource {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * A job's events, from the first one kept (or after `lastEventId`) to its terminal
   * `job.completed`, `job.failed` or `job.canceled`, after which the iteration ends. A
   * dropped connection is resumed with `Last-Event-ID`: no event is lost or repeated.
   * Break out of the loop to stop listening.
   */
  stream(jobId: string, options: StreamEventsOptions = {}): AsyncGenerator<LiveEvent> {
    return streamEvents(this.#http, `/v1/jobs/${encodeURIComponent(jobId)}/events`, options);
  }

  /** A batch's `batch.progress` events, to its terminal `batch.completed`. See {@link stream}. */
  streamBatch(batchId: string, options: StreamEventsOptions = {}): AsyncGenerator<LiveEvent> {
    return streamEvents(this.#http, `/v1/batches/${encodeURIComponent(batchId)}/events`, options);
  }
}

async function* streamEvents(
  http: HttpClient,
  path: string,
  options: StreamEventsOptions,
): AsyncGenerator<LiveEvent> {
  const maxReconnects = options.maxReconnects ?? 5;
  const maxDelayMs = options.maxReconnectDelayMs ?? 5_000;
  let lastEventId = options.lastEventId;
  let delayMs = 1_000;
  let failures = 0;
  for (;;) {
    let body: ReadableStream<Uint8Array> | null = null;
    try {
      const response = await http.send({
        method: "GET",
        path,
        headers: {
          accept: "text/event-stream",
          ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
        },
        signal: options.signal,
        stream: true,
      });
      body = response.body;
    } catch (error) {
      if (!reconnectable(error) || failures >= maxReconnects) throw error;
    }
    if (body !== null) {
      try {
        for await (const item of readServerSentEvents(body)) {
          if (item.kind === "retry") {
            delayMs = Math.min(item.retryMs, maxDelayMs);
            continue;
          }
          failures = 0;
          const { id, event, data } = item.event;
          if (id !== undefined) lastEventId = id;
          const live = { id, type: event, data: JSON.parse(data) } as LiveEvent;
          yield live;
          if (isTerminalEvent(live)) return;
        }
      } catch (error) {
        // A connection cut mid-stream: resumed below. The caller's abort is final.
        if (options.signal?.aborted) throw options.signal.reason;
        if (error instanceof SyntaxError) throw error;
      }
    }
    failures += 1;
    if (failures > maxReconnects) {
      throw new ConnectionError(`the event stream ${path} dropped ${failures} times in a row`, {
        status: 0,
        code: "connection_error",
      });
    }
    await sleep(delayMs, options.signal);
  }
}

function reconnectable(error: unknown): boolean {
  return (
    GenqError.is(error) &&
    (error.code === "connection_error" || error.code === "timeout" || error.status === 503)
  );
}
