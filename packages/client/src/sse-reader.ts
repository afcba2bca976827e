/** One server-sent event, as the SSE format defines its fields. */
export interface ServerSentEvent {
  /** The `id:` field; undefined when the event had none. */
  id: string | undefined;
  /** The `event:` field (`message` when absent). */
  event: string;
  data: string;
}

/** What the reader reports: an event, or a `retry:` field (the reconnection delay in ms). */
export type SseItem = { kind: "event"; event: ServerSentEvent } | { kind: "retry"; retryMs: number };

/**
 * Reads a `text/event-stream` body: splits lines on CR, LF or CRLF, skips comments
 * (`: keep-alive`), joins `data:` lines with LF, and yields an event at each blank line
 * (an event with no data is dropped, as browsers do). Written by hand over fetch so it can
 * send the Authorization header, which `EventSource` cannot.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseItem> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let sawId = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        // A lone CR at the end may be the first half of a CRLF: wait for the next chunk.
        if (match === null || (match[0] === "\r" && match.index === buffer.length - 1 && !done)) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (data.length > 0) {
            yield {
              kind: "event",
              event: { id: sawId ? id : undefined, event: event || "message", data: data.join("\n") },
            };
          }
          event = "";
          data = [];
          sawId = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id" && !value.includes("\0")) {
          id = value;
          sawId = true;
        } else if (field === "retry" && /^\d+$/.test(value)) yield { kind: "retry", retryMs: Number(value) };
      }
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
