/** Options for {@link DeltaBuffer}. */
export interface DeltaBufferOptions {
  /** Pending text is published at most this often; default 50 ms. */
  intervalMs?: number;
  /** Publishes pending text at once when it reaches this many characters; default 8,192. */
  maxChars?: number;
  /** Publishes one coalesced piece of text; must not throw (publishing is best effort). */
  flush(text: string): Promise<void>;
}

/**
 * Coalesces streamed text deltas into one event per interval, so a fast model does
 * not write one stream entry per token. Flushes run one at a time, in order.
 */
export class DeltaBuffer {
  readonly #intervalMs: number;
  readonly #maxChars: number;
  readonly #flush: (text: string) => Promise<void>;
  #pending = "";
  #timer: NodeJS.Timeout | undefined;
  #tail: Promise<void> = Promise.resolve();

  constructor(options: DeltaBufferOptions) {
    this.#intervalMs = options.intervalMs ?? 50;
    this.#maxChars = options.maxChars ?? 8_192;
    this.#flush = options.flush;
  }

  /** Adds a delta; it is published within the interval. */
  push(delta: string): void {
    if (delta === "") return;
    this.#pending += delta;
    if (this.#pending.length >= this.#maxChars) {
      this.#emit();
      return;
    }
    this.#timer ??= setTimeout(() => this.#emit(), this.#intervalMs);
  }

  /** Publishes what is pending now and waits until every flush so far is done. */
  async drain(): Promise<void> {
    this.#emit();
    await this.#tail;
  }

  /** Drops pending text (the attempt failed: a retry starts the text over). */
  discard(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = "";
  }

  #emit(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending === "") return;
    const text = this.#pending;
    this.#pending = "";
    this.#tail = this.#tail.then(() => this.#flush(text));
  }
}
