import { describe, expect, it } from "vitest";
import {
  estimateTokens,
  MESSAGE_OVERHEAD_TOKENS,
  maxInputTokens,
  maxTokensOf,
  REQUEST_OVERHEAD_TOKENS,
} from "./estimate-tokens.ts";

describe("maxTokensOf", () => {
  it.each([
    ["English", "The quick brown fox jumps over the lazy dog.", 44],
    ["CJK (3 bytes a character)", "日本語のテキストです", 30],
    ["emoji (4 bytes, and more with joiners)", "👍👩‍👩‍👧", 4 + 18],
    ["code", "for (let i = 0; i < n; i++) { sum += a[i]; }", 44],
  ])("bounds %s by its UTF-8 bytes", (_name, text, bytes) => {
    expect(maxTokensOf(text)).toBe(bytes);
  });

  it("is never below the old 4-characters-a-token estimate, where CJK and emoji were under-counted", () => {
    for (const text of ["日本語のテキストです", "👍👍👍👍👍👍👍👍", "a", "x".repeat(1_000)]) {
      expect(maxTokensOf(text)).toBeGreaterThanOrEqual(estimateTokens(text));
    }
    // 10 CJK characters were 3 tokens; real tokenizers make about 10 of them.
    expect(estimateTokens("日本語のテキストです")).toBe(3);
  });

  it("counts what NFKC normalization expands a character into", () => {
    // U+FDFA is 3 bytes, and 33 once a normalizing tokenizer expands it.
    expect(maxTokensOf("\uFDFA")).toBe(Buffer.byteLength("\uFDFA".normalize("NFKC")));
    expect(maxTokensOf("\uFDFA")).toBeGreaterThan(3);
  });
});

describe("maxInputTokens", () => {
  it("adds a per-message and a per-request overhead", () => {
    expect(maxInputTokens([{ content: "hi" }, { content: "日本" }])).toBe(
      2 + 6 + 2 * MESSAGE_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS,
    );
  });
});
