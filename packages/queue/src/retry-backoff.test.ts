import { describe, expect, it } from "vitest";
import { retryDelayMs } from "./retry-backoff.ts";

describe("retryDelayMs", () => {
  it("doubles the ceiling with each attempt, jittered between half and all of it", () => {
    expect(retryDelayMs({ attemptsMade: 1, baseMs: 1_000, random: () => 0 })).toBe(500);
    expect(retryDelayMs({ attemptsMade: 1, baseMs: 1_000, random: () => 1 })).toBe(1_000);
    expect(retryDelayMs({ attemptsMade: 3, baseMs: 1_000, random: () => 1 })).toBe(4_000);
  });

  it("caps the delay", () => {
    expect(retryDelayMs({ attemptsMade: 30, baseMs: 1_000, random: () => 1, maxMs: 60_000 })).toBe(60_000);
  });

  it("waits at least as long as the provider's Retry-After", () => {
    expect(retryDelayMs({ attemptsMade: 1, baseMs: 100, retryAfterMs: 7_000, random: () => 1 })).toBe(7_000);
  });
});
