import { describe, expect, it } from "vitest";
import { parseRetryAfter } from "./parse-retry-after.ts";

describe("parseRetryAfter", () => {
  it("prefers retry-after-ms", () => {
    expect(parseRetryAfter(new Headers({ "retry-after-ms": "1500", "retry-after": "9" }))).toBe(1500);
  });

  it("reads retry-after in seconds", () => {
    expect(parseRetryAfter(new Headers({ "retry-after": "2" }))).toBe(2000);
  });

  it("reads retry-after as an HTTP date", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter({ "retry-after": "Wed, 01 Jan 2025 00:00:05 GMT" }, now)).toBe(5000);
    expect(parseRetryAfter({ "retry-after": "Tue, 31 Dec 2024 23:00:00 GMT" }, now)).toBe(0);
  });

  it("ignores missing and unparseable values", () => {
    expect(parseRetryAfter(new Headers())).toBeUndefined();
    expect(parseRetryAfter({ "retry-after": "soon" })).toBeUndefined();
  });
});
