import { describe, expect, it } from "vitest";
import { isStreamId } from "./stream-id.ts";

describe("isStreamId", () => {
  it("accepts Redis stream ids and bare milliseconds", () => {
    for (const id of [
      "0",
      "0-0",
      "1700000000000-0",
      "1700000000000-42",
      "18446744073709551615-18446744073709551615",
    ])
      expect(isStreamId(id)).toBe(true);
  });

  it("refuses anything else", () => {
    for (const id of [
      "",
      "-",
      "1-",
      "-1",
      "abc",
      "1-2-3",
      "1.5-0",
      " 1-0",
      "$",
      ">",
      "18446744073709551616-0",
    ])
      expect(isStreamId(id)).toBe(false);
  });
});
