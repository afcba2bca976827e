/** The non-empty lines of a UTF-8 byte stream, each parsed as JSON (JSONL / NDJSON). */
export async function* readJsonLines<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline = buffer.indexOf("\n");
      while (newline !== -1) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line !== "") yield JSON.parse(line) as T;
        newline = buffer.indexOf("\n");
      }
      if (done) {
        if (buffer.trim() !== "") yield JSON.parse(buffer) as T;
        return;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Where the items of a JSONL batch come from. */
export type JsonlSource =
  | string
  | Uint8Array<ArrayBuffer>
  | ReadableStream<Uint8Array>
  | Iterable<object | string>
  | AsyncIterable<object | string | Uint8Array>;

/**
 * A JSONL request body from a source: text and bytes are sent as they are, a stream is
 * passed through, and an (async) iterable of items is written one JSON line each as it is
 * read, so a large batch never sits in memory.
 */
export function toJsonlBody(
  source: JsonlSource,
): string | Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> {
  if (typeof source === "string" || source instanceof Uint8Array || source instanceof ReadableStream) {
    return source;
  }
  const encoder = new TextEncoder();
  const iterator =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<object | string | Uint8Array>)[Symbol.asyncIterator]()
      : (source as Iterable<object | string>)[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) {
        controller.close();
        return;
      }
      const item: unknown = next.value;
      if (item instanceof Uint8Array) controller.enqueue(item);
      else if (typeof item === "string")
        controller.enqueue(encoder.encode(item.endsWith("\n") ? item : `${item}\n`));
      else controller.enqueue(encoder.encode(`${JSON.stringify(item)}\n`));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
