import { Readable } from "node:stream";
import { GenqError } from "@genq/core";

const NEWLINE = 0x0a;

/** Options for {@link JsonlSplitter}. */
export interface JsonlSplitterOptions {
  /** The longest line accepted, in bytes (without its newline); a longer one is a 413 naming it. */
  maxLineBytes: number;
  /** The most bytes in total; more is a 413. */
  maxTotalBytes: number;
}

/**
 * Splits a byte stream into lines in one pass: each byte is looked at once (the
 * search for a newline starts in the new chunk, never again in what is pending),
 * and a line is decoded only when it is complete. A newline byte never occurs
 * inside a multi-byte UTF-8 sequence, so splitting bytes is safe. Memory holds at
 * most one line (`maxLineBytes`) and one chunk.
 */
export class JsonlSplitter {
  readonly #options: JsonlSplitterOptions;
  /** Pieces of the line not ended yet. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #totalBytes = 0;
  /** 1-based number of the line being read. */
  #lineNumber = 1;
  /** Bytes searched for a newline so far: equals the bytes pushed (one pass). */
  scannedBytes = 0;

  constructor(options: JsonlSplitterOptions) {
    this.#options = options;
  }

  /** The complete lines `chunk` ends, in order; throws a 413 past a limit. */
  push(chunk: Buffer): string[] {
    this.#totalBytes += chunk.length;
    if (this.#totalBytes > this.#options.maxTotalBytes) {
      throw new GenqError("payload_too_large", "request body is larger than the limit", {
        details: { limitBytes: this.#options.maxTotalBytes },
      });
    }
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start);
      this.scannedBytes += (newline === -1 ? chunk.length : newline + 1) - start;
      if (newline === -1) break;
      this.#append(chunk.subarray(start, newline));
      lines.push(this.#takeLine());
      start = newline + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
    return lines;
  }

  /** The last line, when the stream did not end with a newline. */
  end(): string | undefined {
    if (this.#pendingBytes === 0) return undefined;
    return this.#takeLine();
  }

  #append(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#pendingBytes += piece.length;
    if (this.#pendingBytes > this.#options.maxLineBytes) {
      const { maxLineBytes } = this.#options;
      throw new GenqError(
        "payload_too_large",
        `body line ${this.#lineNumber} is longer than ${maxLineBytes} bytes; send one item per line, each at most ${maxLineBytes} bytes`,
        { details: { line: this.#lineNumber, maxLineBytes } },
      );
    }
    this.#pending.push(piece);
  }

  #takeLine(): string {
    const pieces = this.#pending;
    const line =
      pieces.length === 1 ? (pieces[0] as Buffer).toString("utf8") : Buffer.concat(pieces).toString("utf8");
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lineNumber += 1;
    return line;
  }
}

/**
 * The lines of a JSONL stream, read with a {@link JsonlSplitter}: linear in the
 * body's size, never holding more than one line and one chunk.
 */
export async function* jsonLines(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  options: JsonlSplitterOptions,
): AsyncIterable<string> {
  const splitter = new JsonlSplitter(options);
  // Leaving early (a 413) must not destroy a request stream: that would cut the connection before the answer.
  const chunks = stream instanceof Readable ? stream.iterator({ destroyOnReturn: false }) : stream;
  for await (const chunk of chunks) {
    yield* splitter.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
  }
  const last = splitter.end();
  if (last !== undefined) yield last;
}
