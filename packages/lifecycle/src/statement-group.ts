/** A request waiting for its group's statement. */
interface Pending<Request, Result> {
  request: Request;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * Group commit: requests that arrive while a statement is being written wait for it,
 * then go out together in the next one (at most `maxSize`, one per key), and each
 * caller is answered from that statement's result. A lone request is written at once
 * (after the current event-loop turn, so requests of the same turn share it); nothing
 * waits for a timer. If a statement fails, every caller of its group gets the error.
 */
export class StatementGroup<Request, Result> {
  readonly #write: (requests: readonly Request[]) => Promise<readonly Result[]>;
  readonly #keyOf: (request: Request) => string;
  readonly #maxSize: number;
  #pending: Array<Pending<Request, Result>> = [];
  #flushing = false;

  /**
   * `write` sends one statement for `requests` and returns one result per request, in
   * order; `keyOf` names what a request changes (two requests with one key never
   * share a statement).
   */
  constructor(options: {
    write: (requests: readonly Request[]) => Promise<readonly Result[]>;
    keyOf: (request: Request) => string;
    maxSize: number;
  }) {
    this.#write = options.write;
    this.#keyOf = options.keyOf;
    this.#maxSize = options.maxSize;
  }

  /** Sends `request` with the next group; resolves with its result once that statement committed. */
  add(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#pending.push({ request, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const group: Array<Pending<Request, Result>> = [];
        const rest: Array<Pending<Request, Result>> = [];
        const keys = new Set<string>();
        for (const pending of this.#pending) {
          const key = this.#keyOf(pending.request);
          if (group.length < this.#maxSize && !keys.has(key)) {
            group.push(pending);
            keys.add(key);
          } else rest.push(pending);
        }
        this.#pending = rest;
        try {
          const results = await this.#write(group.map((pending) => pending.request));
          group.forEach((pending, index) => {
            pending.resolve(results[index] as Result);
          });
        } catch (error) {
          for (const pending of group) pending.reject(error);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
