import { describe, expect, it } from "vitest";
import { MAX_WAIT_SECONDS, preferredWaitSeconds } from "./job-wait.ts";

describe("preferredWaitSeconds (RFC 7240 Prefer)", () => {
  it("reads wait=N, among other preferences and parameters, with any case and spacing", () => {
    expect(preferredWaitSeconds("wait=5")).toBe(5);
    expect(preferredWaitSeconds("respond-async, wait=10")).toBe(10);
    expect(preferredWaitSeconds(" WAIT = 7 ; foo=bar")).toBe(7);
    expect(preferredWaitSeconds('wait="3"')).toBe(3);
    expect(preferredWaitSeconds(["handling=lenient", "wait=4"])).toBe(4);
  });

  it("takes wait alone as the maximum and caps larger values at it", () => {
    expect(preferredWaitSeconds("wait")).toBe(MAX_WAIT_SECONDS);
    expect(preferredWaitSeconds("respond-async, wait; x=1")).toBe(MAX_WAIT_SECONDS);
    expect(preferredWaitSeconds("wait=61")).toBe(60);
    expect(preferredWaitSeconds("wait=999999999")).toBe(60);
    expect(preferredWaitSeconds(`wait=${"9".repeat(400)}`)).toBe(60);
  });

  it("ignores values that are not a positive integer, and other preferences", () => {
    for (const header of ["wait=0", "wait=-1", "wait=1.5", "wait=abc", "wait=", "wait=1e3"]) {
      expect(preferredWaitSeconds(header), header).toBeUndefined();
    }
    expect(preferredWaitSeconds(undefined)).toBeUndefined();
    expect(preferredWaitSeconds("respond-async")).toBeUndefined();
    expect(preferredWaitSeconds("waiting=5")).toBeUndefined();
  });
});
