import type { Redis } from "ioredis";
import type { EventLog } from "./event-log.ts";
import type { EventWatches } from "./event-watches.ts";
import { type EventSubject, isTerminalEventType, type LiveEvent } from "./live-event.ts";
import { formatSseComment, formatSseEvent } from "./sse-format.ts";

/** A subject's terminal state as Postgres has it: the event to synthesize if the stream lost it. */
export interface FinishedState {
  /** The terminal event (without id), built from the row. */
  event: Omit<LiveEvent, "id">;
  /** When the row became terminal; the stream gets `terminalGraceMs` from then to carry the real event. */
  finishedAt: Date | null;
}

/** Options for {@link runEventSession}. */
export interface EventSessionOptions {
  log: EventLog;
  subject: EventSubject;
  /** Resume after this entry id (`Last-Event-ID`), or `"0"` for the start of the stream. */
  afterId: string;
  /** A dedicated connection for blocking reads ({@link EventLog.openReader}). */
  reader: Redis;
  /** After this long without events, a `: keep-alive` comment is sent and the row checked again. */
  heartbeatMs: number;
  /**
   * How long after the row became terminal the stream may still lack its terminal
   * event (the publish happens after commit) before the session synthesizes it. Default 2 s.
   */
  terminalGraceMs?: number;
  /**
   * While a watch is unconfirmed (a publisher did not acknowledge it in time, so it may
   * skip this subject's events), the row is re-read this often instead of at each
   * heartbeat. Default 1 s.
   */
  unconfirmedRecheckMs?: number;
  /** Aborted when the client went away. */
  signal: AbortSignal;
  /** Writes SSE text to the client; resolves when it may write more (backpressure). */
  send(text: string): Promise<void>;
  /** The subject's terminal state from Postgres, or undefined while it is not finished. */
  finished(): Promise<FinishedState | undefined>;
  /**
   * Who listens: the session announces its subject (and renews the watch while it
   * runs) before it first reads the row, so publishers that skip unwatched subjects
   * publish every transition committed after that read.
   */
  watches?: EventWatches;
  /**
   * The event that tells the subject's current state (e.g. `job.started` for a running
   * job), read from Postgres; appended to the stream when it is still empty, since
   * events before the watch were not published. Undefined when there is none to tell.
   */
  current?: () => Promise<Omit<LiveEvent, "id"> | undefined>;
  now?: () => number;
}

/** How a session ended. */
export type EventSessionEnd = "terminal" | "synthesized" | "aborted";

/**
 * Streams a subject's events to one client as SSE: first those after `afterId`,
 * then new ones as they arrive (`XREAD BLOCK` on the session's own connection),
 * until the terminal event. While idle it sends heartbeats and re-reads the row,
 * so a lost publish (publishing is best effort) never leaves the client hanging:
 * a terminal row whose stream has no terminal event gets one synthesized from the
 * row, sent without an `id:`. With `watches`, the subject is announced (and its
 * watch confirmed by every publisher) before the row is first read; see
 * docs/live-events.md for why no terminal event is then lost.
 */
export async function runEventSession(options: EventSessionOptions): Promise<EventSessionEnd> {
  const { watches } = options;
  if (watches === undefined) return streamSession(options, { confirmed: true });
  const watch = { confirmed: await watches.watch(options.subject) };
  // A renewal every publisher acknowledged confirms a watch that started unconfirmed (the
  // session reads the row once more after it, so nothing committed before is missed).
  const renewal = setInterval(() => {
    watches.watch(options.subject).then(
      (confirmed) => {
        if (confirmed) watch.confirmed = true;
      },
      () => {},
    );
  }, watches.leaseMs / 3);
  renewal.unref();
  try {
    return await streamSession(options, watch);
  } finally {
    clearInterval(renewal);
  }
}

/**
 * `watch.confirmed` false: some publisher may not know of this session, so it may never
 * publish the terminal event; the row is then re-read every `unconfirmedRecheckMs`
 * (rather than every heartbeat), and a finished row's event is sent when the grace for
 * the published one has passed, as for a confirmed watch.
 */
async function streamSession(
  options: EventSessionOptions,
  watch: { confirmed: boolean },
): Promise<EventSessionEnd> {
  const { log, subject, reader, signal } = options;
  const now = options.now ?? Date.now;
  const graceMs = options.terminalGraceMs ?? 2_000;
  const recheckMs = options.unconfirmedRecheckMs ?? 1_000;
  let lastId = options.afterId;
  let lastSentAt = now();
  // Whether the row was read after the watch was confirmed: only then are the publishes to come trusted.
  let trusted = watch.confirmed;
  let finished = await options.finished();
  if (finished === undefined && options.current !== undefined) {
    const state = await options.current();
    if (state !== undefined) await log.appendIfEmpty({ subject, type: state.type, data: state.data });
  }
  // When the terminal event is overdue: the grace after the row finished, counted from when
  // this session saw it at the latest (a clock ahead of this one cannot stretch the wait).
  let deadline: number | undefined;
  const overdueAt = (state: FinishedState) =>
    Math.min((state.finishedAt?.getTime() ?? 0) + graceMs, now() + graceMs);
  // Watched: a subject finished before this session watched it may never get its terminal event
  // published (its publisher decided before the watch): what the stream has now, else the row's.
  if (finished !== undefined) deadline = options.watches === undefined ? overdueAt(finished) : now();

  // Sends events; true once the terminal one went out.
  const deliver = async (events: LiveEvent[]): Promise<boolean> => {
    for (const event of events) {
      await options.send(
        formatSseEvent({ id: event.id, event: event.type, data: JSON.stringify(event.data) }),
      );
      lastSentAt = now();
      if (event.id !== undefined) lastId = event.id;
      if (isTerminalEventType(event.type)) return true;
    }
    return false;
  };

  while (!signal.aborted) {
    const graceLeftMs = deadline === undefined ? undefined : Math.max(0, deadline - now());
    // A finished subject: read what is there; wait only for what is left of the grace.
    // Unconfirmed: wake for the next row check; else for the heartbeat.
    const idleMs = trusted
      ? options.heartbeatMs
      : Math.min(recheckMs, Math.max(0, options.heartbeatMs - (now() - lastSentAt)));
    const blockMs = graceLeftMs === undefined ? idleMs : Math.min(idleMs, graceLeftMs);
    let events: LiveEvent[];
    try {
      events = await log.read(subject, lastId, {
        count: 100,
        connection: reader,
        ...(blockMs > 0 ? { blockMs } : {}),
      });
    } catch (error) {
      // Disconnecting the reader is how a departed client's blocked read is ended.
      if (signal.aborted) break;
      throw error;
    }
    if (signal.aborted) break;
    if (await deliver(events)) return "terminal";
    if (events.length > 0) continue;
    if (finished !== undefined && deadline !== undefined && now() >= deadline) {
      await options.send(
        formatSseEvent({ event: finished.event.type, data: JSON.stringify(finished.event.data) }),
      );
      return "synthesized";
    }
    if (finished === undefined) {
      if (trusted || now() - lastSentAt >= options.heartbeatMs) {
        await options.send(formatSseComment("keep-alive"));
        lastSentAt = now();
      }
      const confirmedBeforeRead = watch.confirmed;
      finished = await options.finished();
      if (confirmedBeforeRead) trusted = true;
      if (finished !== undefined) deadline = overdueAt(finished);
    }
  }
  return "aborted";
}
