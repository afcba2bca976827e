import { describe, expect, it } from "vitest";
import {
  CreateJobRequest,
  ImageJobInput,
  ProviderKind,
  providerOptionIssues,
  TextJobInput,
} from "./index.ts";

describe("providerOptions allow-list", () => {
  it.each([
    ["n", { n: 50 }],
    ["max_completion_tokens", { max_completion_tokens: 100_000 }],
    ["max_tokens", { max_tokens: 100_000 }],
    ["service_tier", { service_tier: "priority" }],
    ["store", { store: true }],
    ["stream_options", { stream_options: null }],
    ["tools", { tools: [] }],
  ])("refuses openai.%s in a text job, naming the option", (option, options) => {
    const result = TextJobInput.safeParse({ prompt: "hi", providerOptions: { openai: options } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["providerOptions", "openai", option]);
    expect(result.error?.issues[0]?.message).toContain(
      `input.providerOptions.openai.${option} is not allowed`,
    );
  });

  it("refuses the issue's whole attack, one issue per option", () => {
    const result = CreateJobRequest.safeParse({
      type: "text",
      input: {
        prompt: "hi",
        providerOptions: {
          openai: { n: 50, max_completion_tokens: 100_000, service_tier: "priority", store: true },
        },
      },
    });
    expect(result.error?.issues.map((issue) => issue.path.at(-1))).toEqual([
      "n",
      "max_completion_tokens",
      "service_tier",
      "store",
    ]);
  });

  it.each([
    ["n", { n: 10 }],
    ["quality", { quality: "high" }],
    ["size", { size: "1536x1024" }],
    ["candidateCount", { candidateCount: 4 }],
    ["imageConfig", { imageConfig: { imageSize: "4K" } }],
  ])("refuses %s smuggled into an image job's providerOptions", (option, options) => {
    const result = ImageJobInput.safeParse({ prompt: "a cat", providerOptions: { gemini: options } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["providerOptions", "gemini", option]);
  });

  it("accepts options that cannot multiply or reprice a call, under any provider name", () => {
    const accepted = TextJobInput.safeParse({
      prompt: "hi",
      providerOptions: {
        openai: { seed: 7, reasoning_effort: "low", response_format: { type: "json_object" } },
        anthropic: { top_k: 5, thinking: { type: "enabled", budget_tokens: 1_024 } },
        gemini: {
          topK: 3,
          safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" }],
        },
        mock: { latencyMs: 10, fail: "provider_unavailable" },
        // An operator-named OpenAI-compatible provider: the schema cannot know its kind.
        deepseek: { seed: 1 },
      },
    });
    expect(accepted.success).toBe(true);
  });

  it("refuses an allowed option with a value that could change the price", () => {
    const result = TextJobInput.safeParse({
      prompt: "hi",
      providerOptions: { openai: { response_format: { type: "json_schema", json_schema: {} } } },
    });
    expect(result.error?.issues[0]?.message).toContain(
      "input.providerOptions.openai.response_format is not allowed with this value",
    );
  });

  it("checks an option against the provider's own kind when it is known", () => {
    const options = { openai: { top_k: 5 } };
    // Some kind (anthropic) allows top_k, so a name of unknown kind passes...
    expect(providerOptionIssues(options, "text")).toEqual([]);
    // ...but not on an OpenAI provider.
    const [issue] = providerOptionIssues(options, "text", () => "openai");
    expect(issue?.path).toEqual(["openai", "top_k"]);
    expect(issue?.reason).toContain("on a provider of kind openai");
    expect(issue?.reason).toContain("allowed options: frequency_penalty");
  });

  it("lets no kind allow an option that multiplies, caps or reprices a call", () => {
    const forbidden = [
      ...["n", "candidateCount", "max_tokens", "max_completion_tokens", "maxOutputTokens"],
      ...["service_tier", "store", "quality", "size", "imageConfig", "prediction", "tools"],
    ];
    const options = Object.fromEntries(forbidden.map((name) => [name, 1]));
    for (const kind of ProviderKind.options) {
      for (const capability of ["text", "image"] as const) {
        expect(providerOptionIssues({ any: options }, capability, () => kind)).toHaveLength(forbidden.length);
      }
    }
  });
});
