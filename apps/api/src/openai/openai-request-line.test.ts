import { describe, expect, it } from "vitest";
import { checkRequestLine } from "./openai-request-line.ts";

function line(body: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ custom_id: "r1", method: "POST", url: "/v1/chat/completions", body, ...extra });
}

const messages = [{ role: "user", content: "hi" }];

describe("checkRequestLine", () => {
  it("maps a chat-completion body to a genq text input", () => {
    const checked = checkRequestLine(
      line({
        model: "gpt-4o-mini",
        messages: [
          { role: "developer", content: "Be brief." },
          {
            role: "user",
            content: [
              { type: "text", text: "a" },
              { type: "text", text: "b" },
            ],
          },
        ],
        max_tokens: 10,
        max_completion_tokens: 20,
        temperature: 0.5,
        top_p: 0.9,
        stop: "END",
        n: 1,
        stream: false,
        user: "someone",
      }),
    );
    expect(checked).toEqual({
      valid: true,
      customId: "r1",
      model: "gpt-4o-mini",
      input: {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "a\nb" },
        ],
        maxTokens: 20,
        temperature: 0.5,
        topP: 0.9,
        stop: ["END"],
      },
    });
  });

  it.each([
    ["{oops", "invalid_json_line", null],
    ["[1,2]", "invalid_json_line", null],
    [
      JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: {} }),
      "missing_required_parameter",
      "custom_id",
    ],
    [line({ model: "m", messages }, { method: "GET" }), "invalid_value", "method"],
    [line({ model: "m", input: "x" }, { url: "/v1/embeddings" }), "unsupported_url", "url"],
    [line({ messages }), "missing_required_parameter", "body.model"],
    [line({ model: "m", messages: [] }), "invalid_value", "body.messages"],
    [
      line({ model: "m", messages: [{ role: "tool", content: "x" }] }),
      "invalid_value",
      "body.messages[0].role",
    ],
    [
      line({ model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] }),
      "invalid_value",
      "body.messages[0].content",
    ],
    [line({ model: "m", messages, tools: [] }), "invalid_value", "body.tools"],
    [line({ model: "m", messages, n: 2 }), "invalid_value", "body.n"],
    [line({ model: "m", messages, temperature: 7 }), "invalid_value", "body"],
  ])("refuses %s with %s", (text, code, param) => {
    const checked = checkRequestLine(text);
    expect(checked.valid).toBe(false);
    if (!checked.valid) expect(checked.error).toMatchObject({ code, param });
  });

  it("says why an embeddings line cannot run", () => {
    const checked = checkRequestLine(line({ model: "e", input: "x" }, { url: "/v1/embeddings" }));
    expect(checked.valid ? "" : checked.error.message).toMatch(/genq has no embeddings/);
  });
});
