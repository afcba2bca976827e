import { GenqError, WaitTimeoutError } from "../errors.ts";
import { sleep } from "../retry-after.ts";
import type { LiveEvent } from "../types.ts";

/** Options of `jobs.wait` and `batches.wait`. */
export interface WaitOptions {
  /** Give up after this long (a {@link WaitTimeoutError}); the job keeps running. @defaultValue 600000 (10 min) */
  timeoutMs?: number | undefined;
  /** Stops waiting (rejects with the signal's reason); the job keeps running. */
  signal?: AbortSignal | undefined;
  /** The first polling interval when live events are unavailable; it grows to 5 s. @defaultValue 1000 */
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
 * Waits until a job or batch finishes: live events while they work (one read when the
 * terminal event arrives), polling with growing intervals when they do not (the event
 * stream refused with 429/503, or dropped for good). Errors that polling cannot fix (401,
 * 404) are thrown at once.
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
  try {
    const first = await subject.read(signal);
    if (subject.finished(first)) return first;
    if (await finishedByEvents(subject, signal)) {
      const current = await subject.read(signal);
      if (subject.finished(current)) return current;
    }
    let intervalMs = options.pollIntervalMs ?? 1_000;
    for (;;) {
      await sleep(intervalMs, signal);
      const current = await subject.read(signal);
      if (subject.finished(current)) return current;
      intervalMs = Math.min(MAX_POLL_MS, intervalMs * 1.5);
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** True when the stream brought the terminal event; false when polling should take over. */
async function finishedByEvents<T>(subject: WaitSubject<T>, signal: AbortSignal): Promise<boolean> {
  try {
    for await (const event of subject.events(signal)) {
      if (subject.terminal(event)) return true;
    }
    return false;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (GenqError.is(error) && (error.status === 401 || error.status === 403 || error.status === 404))
      throw error;
    return false;
  }
}
