/** One server-sent event, as written on the wire. */
export interface SseMessage {
  /** The `id:` field: what the client sends back as `Last-Event-ID` when it reconnects. */
  id?: string | undefined;
  /** The `event:` field (the type); absent means "message". */
  event?: string | undefined;
  /** The payload; every line of it becomes one `data:` line. */
  data: string;
}

/**
 * Formats one event. Newlines in `data` split into several `data:` lines (the
 * client joins them back with "\n"); `id` and `event` must be single-line.
 */
export function formatSseEvent(message: SseMessage): string {
  for (const [field, value] of [
    ["id", message.id],
    ["event", message.event],
  ] as const) {
    if (value !== undefined && /[\r\n]/.test(value)) throw new RangeError(`SSE ${field} must be one line`);
  }
  if (message.id?.includes("\0")) throw new RangeError("SSE id must not hold NUL");
  let text = "";
  if (message.id !== undefined) text += `id: ${message.id}\n`;
  if (message.event !== undefined) text += `event: ${message.event}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/** A comment line (ignored by clients); used as a heartbeat that keeps proxies from closing idle streams. */
export function formatSseComment(comment: string): string {
  return `${comment
    .split(/\r\n|\r|\n/)
    .map((line) => `: ${line}\n`)
    .join("")}\n`;
}

/** Tells the client how long to wait before reconnecting, in milliseconds. */
export function formatSseRetry(milliseconds: number): string {
  return `retry: ${Math.max(0, Math.floor(milliseconds))}\n\n`;
}
