import { CreateJobRequest } from "@genq/core";
import type { RouterCatalog } from "@genq/providers";
import { describe, expect, it } from "vitest";
import { checkProviderOptions } from "./provider-options-check.ts";

/** A catalog as workers publish it, with an operator-named OpenAI-compatible provider. */
const catalog = {
  version: "v1",
  priceVersion: "p1",
  defaultRoute: "default",
  publishedAt: new Date(0).toISOString(),
  providers: [
    { name: "deepseek", type: "openai-compatible", keys: [], models: [] },
    { name: "claude", type: "anthropic", keys: [], models: [] },
  ],
  routes: [],
} as unknown as RouterCatalog;

function textJob(providerOptions: Record<string, Record<string, unknown>>): CreateJobRequest {
  return CreateJobRequest.parse({ type: "text", input: { prompt: "hi", providerOptions } });
}

describe("checkProviderOptions", () => {
  it("refuses an option of another kind under an operator-named provider, naming it", () => {
    // top_k is an Anthropic option: the schema, which cannot know deepseek's kind, lets it through.
    const body = textJob({ deepseek: { top_k: 5 } });
    expect(() => checkProviderOptions(catalog, body)).toThrow(
      expect.objectContaining({
        code: "invalid_request",
        message: expect.stringContaining("input.providerOptions.deepseek.top_k is not allowed"),
        details: { location: "body", field: "input.providerOptions.deepseek.top_k" },
      }),
    );
    expect(() => checkProviderOptions(catalog, textJob({ claude: { top_k: 5 } }))).not.toThrow();
  });

  it("takes the built-in names for their kind while no worker has published a catalog", () => {
    expect(() => checkProviderOptions(undefined, textJob({ openai: { top_k: 5 } }))).toThrow(
      /input\.providerOptions\.openai\.top_k is not allowed/,
    );
    expect(() => checkProviderOptions(undefined, textJob({ deepseek: { top_k: 5 } }))).not.toThrow();
  });
});
