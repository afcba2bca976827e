import { WEBHOOK_EVENT_TYPES } from "@genq/core";

/**
 * What the live event streams carry, per job and per batch. Terminal job events and
 * batch events are the {@link GenqEvent}s of the finishing transaction; the others
 * come from the worker running the job. Names are noun.verb.
 */
export const LIVE_EVENT_TYPES = [
  "job.started",
  "job.retrying",
  "job.delayed",
  /** Reserved: no provider reports progress besides streamed text today. */
  "job.progress",
  "job.delta",
  // The events of finishing transactions (the ones webhooks deliver too).
  ...WEBHOOK_EVENT_TYPES,
] as const;
export type LiveEventType = (typeof LIVE_EVENT_TYPES)[number];

/** The events after which a job's or a batch's stream ends. */
export const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set([
  "job.completed",
  "job.failed",
  "job.canceled",
  "batch.completed",
]);

/** Whether `type` ends its stream. */
export function isTerminalEventType(type: string): boolean {
  return TERMINAL_EVENT_TYPES.has(type);
}

/** One event as read back from a stream: its stream entry id (the SSE `id:`), type and data. */
export interface LiveEvent {
  /** The Redis stream entry id (`<ms>-<seq>`); undefined for an event synthesized from a row. */
  id: string | undefined;
  type: string;
  data: Record<string, unknown>;
}

/** What a job's or batch's stream is about. */
export type EventSubject = { kind: "job"; id: string } | { kind: "batch"; id: string };
