import { describe, expect, it } from "vitest";
import { formatBytes, ProgressBar } from "./progress-bar.ts";

function output(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, isTTY, columns: 60, write: (text: string) => writes.push(text) };
}

describe("ProgressBar", () => {
  it("redraws one line in place on a terminal and ends it with a newline", () => {
    const terminal = output(true);
    const bar = new ProgressBar(terminal, 200, "upload");
    bar.update(50, "50 B / 200 B", true);
    bar.update(200, "200 B / 200 B", true);
    bar.finish();
    expect(terminal.writes).toHaveLength(3);
    expect(terminal.writes[0]).toMatch(/^\rupload █{8}░{22} {2}25% 50 B \/ 200 B/);
    expect(terminal.writes[1]).toContain(" 100% ");
    expect(terminal.writes.every((text) => text.length <= 64)).toBe(true);
    expect(terminal.writes[2]).toBe("\n");
  });

  it("draws nothing when the output is not a terminal (a pipe, a file)", () => {
    const pipe = output(false);
    const bar = new ProgressBar(pipe, 100, "upload");
    bar.update(10, "", true);
    bar.finish();
    expect(pipe.writes).toEqual([]);
  });

  it("redraws at most every 100 ms unless forced", () => {
    const terminal = output(true);
    const bar = new ProgressBar(terminal, 100, "x");
    for (let done = 0; done < 100; done++) bar.update(done);
    expect(terminal.writes).toHaveLength(1);
  });

  it("formats sizes", () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(3 * 1024 * 1024)]).toEqual([
      "512 B",
      "1.5 KiB",
      "3.0 MiB",
    ]);
  });
});
