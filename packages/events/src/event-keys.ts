import type { EventSubject } from "./live-event.ts";

/** The Redis stream key of a job's or batch's events, under the queue prefix (tests stay isolated). */
export function eventStreamKey(prefix: string, subject: EventSubject): string {
  return `${prefix}:events:${subject.kind}:${subject.id}`;
}

/** The key that lets one process per second publish a batch's coalesced progress. */
export function batchProgressGateKey(prefix: string, batchId: string): string {
  return `${prefix}:events:batch:${batchId}:progress-gate`;
}
