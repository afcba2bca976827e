import { describe, expect, it } from "vitest";
import { DeltaBuffer } from "./delta-buffer.ts";

describe("DeltaBuffer", () => {
  it("coalesces deltas pushed within the interval into one flush", async () => {
    const flushed: string[] = [];
    const buffer = new DeltaBuffer({ intervalMs: 20, flush: async (text) => void flushed.push(text) });
    buffer.push("Hel");
    buffer.push("lo ");
    buffer.push("world");
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(flushed).toEqual(["Hello world"]);
    buffer.push("!");
    await buffer.drain();
    expect(flushed).toEqual(["Hello world", "!"]);
  });

  it("flushes at once past maxChars, keeps order with slow flushes, and drain waits for all", async () => {
    const flushed: string[] = [];
    const buffer = new DeltaBuffer({
      intervalMs: 1_000,
      maxChars: 4,
      flush: async (text) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        flushed.push(text);
      },
    });
    buffer.push("abcd");
    buffer.push("ef");
    buffer.push("ghij");
    buffer.push("k");
    await buffer.drain();
    expect(flushed).toEqual(["abcd", "efghij", "k"]);
  });

  it("drops pending text on discard", async () => {
    const flushed: string[] = [];
    const buffer = new DeltaBuffer({ intervalMs: 10, flush: async (text) => void flushed.push(text) });
    buffer.push("partial");
    buffer.discard();
    await buffer.drain();
    expect(flushed).toEqual([]);
  });
});
