import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseEnv } from "./env.ts";
import { describeStartupError, isSupervisorMessage } from "./supervised-process.ts";

describe("describeStartupError", () => {
  it("gives one line per bad variable, naming it", () => {
    const schema = z.object({ PORT: z.coerce.number().int().max(65_535), NAME: z.string().min(3) });
    let error: unknown;
    try {
      parseEnv(schema, { PORT: "70000", NAME: "x" });
    } catch (caught) {
      error = caught;
    }
    const lines = describeStartupError(error);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^PORT: /);
    expect(lines[1]).toMatch(/^NAME: /);
  });

  it("names the variable that sets a port in use", () => {
    const error = Object.assign(new Error("listen EADDRINUSE: address already in use 127.0.0.1:3000"), {
      code: "EADDRINUSE",
      address: "127.0.0.1",
      port: 3000,
    });
    expect(describeStartupError(error, { PORT: 3000 })).toEqual([
      "127.0.0.1:3000 is already in use (PORT=3000): set PORT to another port, or stop the process that listens there",
    ]);
  });

  it("keeps other errors' messages, without a stack", () => {
    const lines = describeStartupError(new Error("first\n  second\n"));
    expect(lines).toEqual(["first", "second"]);
  });
});

describe("isSupervisorMessage", () => {
  it("accepts ready and failed reports and nothing else", () => {
    expect(isSupervisorMessage({ type: "genq:ready", role: "genq-api" })).toBe(true);
    expect(isSupervisorMessage({ type: "genq:failed", role: "genq-api", problems: ["x"] })).toBe(true);
    expect(isSupervisorMessage({ type: "genq:failed", role: "genq-api", problems: [1] })).toBe(false);
    expect(isSupervisorMessage({ type: "ready" })).toBe(false);
    expect(isSupervisorMessage("genq:ready")).toBe(false);
  });
});
