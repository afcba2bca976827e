import { describe, expect, it } from "vitest";
import { assertKeyPrefix, assertObjectKey } from "./object-key.ts";

describe("assertObjectKey", () => {
  it.each([
    "a",
    "image.png",
    "jobs/01J9Z/0.png",
    "uploads/u_1-2.3/mask.webp",
    ".hidden",
    "a/.b/c",
    "x".repeat(1024),
  ])("accepts %s", (key) => {
    expect(() => assertObjectKey(key)).not.toThrow();
  });

  it.each([
    ["empty", ""],
    ["leading slash", "/jobs/0.png"],
    ["parent segment", "jobs/../0.png"],
    ["leading parent", "../0.png"],
    ["dots inside a name", "a..b"],
    ["trailing slash", "jobs/"],
    ["empty segment", "jobs//0.png"],
    ["space", "my image.png"],
    ["backslash", "jobs\\0.png"],
    ["percent", "a%2Fb"],
    ["non-ASCII", "über.png"],
    ["newline", "a\nb"],
    ["too long", "x".repeat(1025)],
  ])("refuses %s with a TypeError", (_reason, key) => {
    expect(() => assertObjectKey(key)).toThrow(TypeError);
  });

  it("refuses a non-string with a TypeError", () => {
    expect(() => assertObjectKey(42)).toThrow(TypeError);
    expect(() => assertObjectKey(undefined)).toThrow(TypeError);
  });
});

describe("assertKeyPrefix", () => {
  it.each(["", "jobs/", "jobs/01J", "a"])("accepts %j", (prefix) => {
    expect(() => assertKeyPrefix(prefix)).not.toThrow();
  });

  it.each(["/jobs", "../", "jobs/../", "a//", "a b", "ü"])("refuses %j with a TypeError", (prefix) => {
    expect(() => assertKeyPrefix(prefix)).toThrow(TypeError);
  });
});
