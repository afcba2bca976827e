import { readRouterCatalog } from "@genq/providers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

describe("image job validation against the chosen model", () => {
  let harness: Harness;
  let apiKey: string;

  beforeAll(async () => {
    // OpenAI's image models are offered (their capabilities are checked at submit, not called).
    harness = await new Harness({ workerEnv: { OPENAI_API_KEY: "sk-validation-only" } }).start();
    ({ apiKey } = await harness.createUser());
    await waitUntil(
      async () => (await readRouterCatalog(harness.redis, harness.prefix)) !== undefined,
      10_000,
    );
  });
  afterAll(async () => harness.close());

  const submit = (body: Record<string, unknown>) => harness.submit(apiKey, { type: "image", ...body });

  it("refuses a size the model cannot make, naming the allowed ones", async () => {
    const response = await submit({ provider: "mock", input: { prompt: "a cat", size: "300x300" } });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe("invalid_request");
    expect(error.details.field).toBe("input.size");
    expect(error.details.allowed).toContain("1024x1024");
    expect(error.message).toMatch(/300x300 is not a size mock-1 can make; allowed: 256x256/);
  });

  it("refuses more images than the model makes per job", async () => {
    const response = await submit({
      provider: "openai",
      model: "dall-e-3",
      input: { prompt: "a cat", n: 2 },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ details: { field: "input.n", allowed: { max: 1 } } });
  });

  it("refuses an unknown quality, naming the model's", async () => {
    const response = await submit({
      provider: "openai",
      model: "gpt-image-1",
      input: { prompt: "a cat", quality: "ultra" },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details).toMatchObject({
      field: "input.quality",
      allowed: ["low", "medium", "high", "auto"],
    });
  });

  it("accepts what the model supports and stores nothing for refused jobs", async () => {
    const accepted = await submit({ provider: "mock", input: { prompt: "a cat", size: "512x512", n: 2 } });
    expect(accepted.statusCode).toBe(202);
    const list = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs?type=image",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(list.json().data).toHaveLength(1);
  });
});
