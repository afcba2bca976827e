import { GenqError, WaitTimeoutError } from "../errors.ts";
import { sleep } from "../retry-after.ts";
import type { LiveEvent } from "../types.ts";

/** Options of `jobs.wait` and `batches.wait`. */
export interface WaitOptions {
  /** Give up after this long (a {@link WaitTimeoutError}); the job keeps running. @defaultValue 600000 (10 min) */
  timeoutMs?: number | undefined;
  /** Stops waiting (rejects with the signal's reason); the job keeps running. */
  signal?: AbortSignal | undefined;
  /**
   * The first polling interval; it grows to 5 s. Polling runs beside the live events, as a
   * safety net for a lost event and the fallback when events are unavailable. @defaultValue 1000
   */
  pollIntervalMs?: number | undefined;
}

/** How {@link waitFor} reads a job or a batch. */
export interface WaitSubject<T> {
  what: string;
  read(signal: AbortSignal): Promise<T>;
  finished(value: T): boolean;
  events(signal: AbortSignal): AsyncIterable<LiveEvent>;
  terminal(event: LiveEvent): boolean;
}

const MAX_POLL_MS = 5_000;

/**
 * Waits until a job or batch finishes. Live events make it prompt (one read when the
 * terminal event arrives); polling with growing intervals runs alongside, so a lost or
 * late terminal event, or a stream that is refused (429/503) or keeps dropping, costs at
 * most one interval. Errors that polling cannot fix (401, 403, 404) are thrown at once.
 */
export async function waitFor<T>(subject: WaitSubject<T>, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const deadline = new AbortController();
  const timer = setTimeout(
    () =>
      deadline.abort(
        new WaitTimeoutError(`${subject.what} did not finish within ${timeoutMs} ms`, {
          status: 0,
          code: "timeout",
        }),
      ),
    timeoutMs,
  );
  const signal =
    options.signal === undefined ? deadline.signal : AbortSignal.any([options.signal, deadline.signal]);
  // Stops the loser of the race below (the stream, or the polling) once the other has won.
  const settled = new AbortController();
  const running = AbortSignal.any([signal, settled.signal]);
  try {
    const first = await subject.read(signal);
    if (subject.finished(first)) return first;
    return await Promise.race([
      byEvents(subject, running),
      byPolling(subject, running, options.pollIntervalMs ?? 1_000),
    ]);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    settled.abort();
  }
}

/** The finished value once the terminal event came; never settles when the stream fails (polling decides). */
async function byEvents<T>(subject: WaitSubject<T>, signal: AbortSignal): Promise<T> {
  try {
    for await (const event of subject.events(signal)) {
      if (!subject.terminal(event)) continue;
      const current = await subject.read(signal);
      if (subject.finished(current)) return current;
      break;
    }
  } catch (error) {
    if (GenqError.is(error) && [401, 403, 404].includes(error.status)) throw error;
  }
  return new Promise<T>(() => {});
}

async function byPolling<T>(
  subject: WaitSubject<T>,
  signal: AbortSignal,
  firstIntervalMs: number,
): Promise<T> {
  let intervalMs = firstIntervalMs;
  for (;;) {
    await sleep(intervalMs, signal);
    const current = await subject.read(signal);
    if (subject.finished(current)) return current;
    intervalMs = Math.min(MAX_POLL_MS, intervalMs * 1.5);
  }
}
