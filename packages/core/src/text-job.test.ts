import { describe, expect, it } from "vitest";
import { CreateJobRequest, toChatMessages } from "./index.ts";

describe("CreateJobRequest", () => {
  it("accepts a prompt and defaults the priority to normal", () => {
    const parsed = CreateJobRequest.parse({ type: "text", input: { prompt: "hi" } });
    expect(parsed.priority).toBe("normal");
  });

  it("refuses both messages and prompt, naming the field", () => {
    const result = CreateJobRequest.safeParse({
      type: "text",
      input: { prompt: "hi", messages: [{ role: "user", content: "x" }] },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["input", "messages"]);
  });

  it("refuses an unknown field instead of ignoring it", () => {
    const result = CreateJobRequest.safeParse({ type: "text", input: { prompt: "hi", temprature: 1 } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.code).toBe("unrecognized_keys");
  });

  it("folds system and prompt into chat messages in order", () => {
    expect(toChatMessages({ system: "be brief", prompt: "hi" })).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "hi" },
    ]);
  });
});
