import { GenqError } from "@genq/core";
import { describe, expect, it } from "vitest";
import { JsonlSplitter, jsonLines } from "./jsonl-lines.ts";

const MiB = 1024 * 1024;

async function collect(chunks: Array<Buffer | string>, maxLineBytes = MiB): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of jsonLines(chunks, { maxLineBytes, maxTotalBytes: 64 * MiB })) lines.push(line);
  return lines;
}

describe("JsonlSplitter", () => {
  it("splits lines across chunk boundaries, keeps multi-byte characters whole and returns a last line without newline", async () => {
    const text = '{"prompt":"héllo 日本 🎉"}\n{"prompt":"b"}\r\n\n{"prompt":"c"}';
    const bytes = Buffer.from(text, "utf8");
    // One byte per chunk splits every multi-byte character.
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    expect(await collect(chunks)).toEqual([
      '{"prompt":"héllo 日本 🎉"}',
      '{"prompt":"b"}\r',
      "",
      '{"prompt":"c"}',
    ]);
  });

  it("looks at each byte once: a 16 MiB line without a newline in 64 KiB chunks scans 16 MiB, not the square of it", () => {
    const splitter = new JsonlSplitter({ maxLineBytes: 32 * MiB, maxTotalBytes: 64 * MiB });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let pushed = 0;
    for (let index = 0; index < 256; index++) {
      expect(splitter.push(chunk)).toEqual([]);
      pushed += chunk.length;
    }
    expect(splitter.scannedBytes).toBe(pushed);
    expect(splitter.end()?.length).toBe(16 * MiB);
  });

  it("looks at each byte once when a chunk holds many lines", () => {
    const splitter = new JsonlSplitter({ maxLineBytes: MiB, maxTotalBytes: 64 * MiB });
    const chunk = Buffer.from("{}\n".repeat(100_000));
    expect(splitter.push(chunk)).toHaveLength(100_000);
    expect(splitter.scannedBytes).toBe(chunk.length);
  });

  it("refuses a line longer than the cap with a 413 naming the line, before reading further", () => {
    const splitter = new JsonlSplitter({ maxLineBytes: 1_000, maxTotalBytes: 64 * MiB });
    expect(splitter.push(Buffer.from('{"a":1}\n{"b":2}\n'))).toHaveLength(2);
    let thrown: unknown;
    try {
      splitter.push(Buffer.alloc(1_001, 0x61));
    } catch (error) {
      thrown = error;
    }
    expect(GenqError.is(thrown) && thrown.code).toBe("payload_too_large");
    expect((thrown as GenqError).details).toMatchObject({ line: 3, maxLineBytes: 1_000 });
    expect((thrown as GenqError).message).toContain("line 3");
  });

  it("refuses a body over the total limit", () => {
    const splitter = new JsonlSplitter({ maxLineBytes: 1_000, maxTotalBytes: 10 });
    expect(() => splitter.push(Buffer.from("{}\n{}\n{}\n{}\n"))).toThrow(/larger than the limit/);
  });
});
