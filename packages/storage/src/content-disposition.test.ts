import { describe, expect, it } from "vitest";
import { contentDisposition } from "./content-disposition.ts";

describe("contentDisposition", () => {
  it("quotes a plain ASCII name and repeats it encoded", () => {
    expect(contentDisposition("cat.png")).toBe(`attachment; filename="cat.png"; filename*=UTF-8''cat.png`);
  });

  it("replaces quotes, percent signs and non-ASCII in the fallback, keeping the exact name encoded", () => {
    expect(contentDisposition(`a "b" 100% ü's (1).png`)).toBe(
      `attachment; filename="a _b_ 100_ _'s (1).png"; filename*=UTF-8''a%20%22b%22%20100%25%20%C3%BC%27s%20%281%29.png`,
    );
  });

  it.each([
    ["", "empty"],
    ["a/b.png", "slash"],
    ["a\\b.png", "backslash"],
    ["a\r\nb", "CRLF"],
    ["x".repeat(256), "long"],
  ])("refuses %j (%s) with a TypeError", (filename) => {
    expect(() => contentDisposition(filename)).toThrow(TypeError);
  });
});
