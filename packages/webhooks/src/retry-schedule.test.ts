import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_SCHEDULE_MS, nextRetryDelayMs, parseRetrySchedule } from "./retry-schedule.ts";

describe("retry schedule", () => {
  it("waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after failures, then gives up", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((failures) =>
      nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE_MS, failures, () => 0.5),
    );
    expect(delays).toEqual([
      5_000,
      300_000,
      1_800_000,
      7_200_000,
      18_000_000,
      36_000_000,
      36_000_000,
      undefined,
    ]);
  });

  it("jitters by at most 10 %", () => {
    expect(nextRetryDelayMs([0, 1_000], 1, () => 0)).toBe(900);
    expect(nextRetryDelayMs([0, 1_000], 1, () => 0.999_999)).toBe(1_100);
  });

  it("starts a new cycle after an exhausted one (a redelivered message)", () => {
    expect(nextRetryDelayMs([0, 200, 400], 3, () => 0.5)).toBeUndefined();
    expect(nextRetryDelayMs([0, 200, 400], 4, () => 0.5)).toBe(200);
  });

  it("parses a schedule and refuses bad entries", () => {
    expect(parseRetrySchedule("0, 200,200")).toEqual([0, 200, 200]);
    expect(() => parseRetrySchedule("0,-1")).toThrow();
    expect(() => parseRetrySchedule("0,abc")).toThrow();
  });
});
