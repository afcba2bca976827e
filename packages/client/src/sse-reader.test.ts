import { describe, expect, it } from "vitest";
import { readServerSentEvents, type SseItem } from "./sse-reader.ts";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function read(chunks: string[]): Promise<SseItem[]> {
  const items: SseItem[] = [];
  for await (const item of readServerSentEvents(streamOf(chunks))) items.push(item);
  return items;
}

describe("readServerSentEvents", () => {
  it("reads id, event and data, skips comments and reports retry", async () => {
    expect(
      await read(['retry: 3000\n\n: keep-alive\n\nid: 1-0\nevent: job.started\ndata: {"attempt":1}\n\n']),
    ).toEqual([
      { kind: "retry", retryMs: 3000 },
      { kind: "event", event: { id: "1-0", event: "job.started", data: '{"attempt":1}' } },
    ]);
  });

  it("joins multi-line data, accepts CRLF and CR, and events split across chunks (even a CRLF)", async () => {
    const items = await read(["id: 2", "-0\r", "\nevent: x\rdata: a\r\ndata: b\n", "\n", "data: c\n\n"]);
    expect(items).toEqual([
      { kind: "event", event: { id: "2-0", event: "x", data: "a\nb" } },
      { kind: "event", event: { id: undefined, event: "message", data: "c" } },
    ]);
  });

  it("decodes UTF-8 split inside a character", async () => {
    const bytes = new TextEncoder().encode("data: héllo\n\n");
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    const items: SseItem[] = [];
    for await (const item of readServerSentEvents(stream)) items.push(item);
    expect(items).toEqual([{ kind: "event", event: { id: undefined, event: "message", data: "héllo" } }]);
  });

  it("drops an unfinished event at the end of the stream", async () => {
    expect(await read(["data: complete\n\ndata: cut"])).toHaveLength(1);
  });
});
