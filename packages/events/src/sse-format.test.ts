import { describe, expect, it } from "vitest";
import { formatSseComment, formatSseEvent, formatSseRetry } from "./sse-format.ts";
import { type ParsedSseEvent, SseParser } from "./sse-parser.ts";

describe("formatSseEvent", () => {
  it("writes id, event and data lines ended by a blank line", () => {
    expect(formatSseEvent({ id: "1-0", event: "job.started", data: '{"attempt":1}' })).toBe(
      'id: 1-0\nevent: job.started\ndata: {"attempt":1}\n\n',
    );
  });

  it("splits multi-line data into one data line per line", () => {
    expect(formatSseEvent({ data: "a\nb\r\nc" })).toBe("data: a\ndata: b\ndata: c\n\n");
  });

  it("refuses an id or event name with a newline", () => {
    expect(() => formatSseEvent({ id: "1\n2", data: "x" })).toThrow(RangeError);
    expect(() => formatSseEvent({ event: "a\rb", data: "x" })).toThrow(RangeError);
  });

  it("writes comments and the retry field", () => {
    expect(formatSseComment("keep-alive")).toBe(": keep-alive\n\n");
    expect(formatSseRetry(3000)).toBe("retry: 3000\n\n");
  });
});

describe("SseParser", () => {
  function parse(chunks: string[]) {
    const events: ParsedSseEvent[] = [];
    const comments: string[] = [];
    const retries: number[] = [];
    const parser = new SseParser({
      onEvent: (event) => events.push(event),
      onComment: (comment) => comments.push(comment),
      onRetry: (retry) => retries.push(retry),
    });
    for (const chunk of chunks) parser.push(chunk);
    return { events, comments, retries };
  }

  it("reads back what formatSseEvent writes, across arbitrary chunk boundaries", () => {
    const text =
      formatSseRetry(1500) +
      formatSseEvent({ id: "5-1", event: "job.delta", data: JSON.stringify({ delta: "line 1\nline 2" }) }) +
      formatSseComment("keep-alive") +
      formatSseEvent({ event: "job.completed", data: "multi\nline" });
    for (const size of [1, 2, 3, 7, text.length]) {
      const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, "g")) ?? [];
      const { events, comments, retries } = parse(chunks);
      expect(retries).toEqual([1500]);
      expect(comments).toEqual(["keep-alive"]);
      expect(events).toEqual([
        { id: "5-1", hasId: true, event: "job.delta", data: JSON.stringify({ delta: "line 1\nline 2" }) },
        // The last event id carries over to an event without its own id, as in EventSource.
        { id: "5-1", hasId: false, event: "job.completed", data: "multi\nline" },
      ]);
    }
  });

  it("handles CRLF and CR line endings and a leading byte-order mark", () => {
    const { events } = parse(["\uFEFFevent: a\r\ndata: 1\r", "\n\r", "data: 2\r\r\n"]);
    expect(events.map((event) => [event.event, event.data])).toEqual([
      ["a", "1"],
      ["message", "2"],
    ]);
  });

  it("dispatches nothing for a block without data, and waits for the blank line", () => {
    const { events } = parse(["id: 1\n\n", "data: x\n"]);
    expect(events).toEqual([]);
  });
});
