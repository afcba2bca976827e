/** An event the {@link SseParser} dispatched. */
export interface ParsedSseEvent {
  /** The last `id:` seen so far on the connection (the spec's "last event ID"), or undefined. */
  id: string | undefined;
  /** Whether this very event carried an `id:` field. */
  hasId: boolean;
  event: string;
  data: string;
}

/** What the parser saw besides events. */
export interface SseParserCallbacks {
  onEvent(event: ParsedSseEvent): void;
  onComment?(comment: string): void;
  onRetry?(milliseconds: number): void;
}

/**
 * An incremental parser of `text/event-stream` per the WHATWG HTML spec (for tests
 * and Node clients, which have no `EventSource`): feed it chunks as they arrive.
 */
export class SseParser {
  readonly #callbacks: SseParserCallbacks;
  #buffer = "";
  #lastEventId: string | undefined;
  #eventType = "";
  #data: string[] = [];
  #hasId = false;
  #started = false;

  constructor(callbacks: SseParserCallbacks) {
    this.#callbacks = callbacks;
  }

  /** Feeds the next chunk of the stream. */
  push(chunk: string): void {
    this.#buffer += chunk;
    if (!this.#started && this.#buffer.length > 0) {
      this.#started = true;
      if (this.#buffer.startsWith("\uFEFF")) this.#buffer = this.#buffer.slice(1);
    }
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (match === null || (match[0] === "\r" && match.index === this.#buffer.length - 1)) return;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") {
      this.#dispatch();
      return;
    }
    if (line.startsWith(":")) {
      this.#callbacks.onComment?.(line.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    switch (field) {
      case "event":
        this.#eventType = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) {
          this.#lastEventId = value;
          this.#hasId = true;
        }
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#callbacks.onRetry?.(Number(value));
        break;
      default:
        break;
    }
  }

  #dispatch(): void {
    const hasId = this.#hasId;
    this.#hasId = false;
    if (this.#data.length === 0) {
      this.#eventType = "";
      return;
    }
    const event: ParsedSseEvent = {
      id: this.#lastEventId,
      hasId,
      event: this.#eventType === "" ? "message" : this.#eventType,
      data: this.#data.join("\n"),
    };
    this.#eventType = "";
    this.#data = [];
    this.#callbacks.onEvent(event);
  }
}
