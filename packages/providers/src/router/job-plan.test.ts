import { describe, expect, it } from "vitest";
import { buildRouterConfig } from "../config/build-router-config.ts";
import { parseProvidersFile } from "../config/parse-providers-file.ts";
import { maxInputTokens } from "../estimate-tokens.ts";
import { DEFAULT_OUTPUT_TOKENS, type JobPlanRequest, planJob, routingFromCatalog } from "./job-plan.ts";
import { describeRouterConfig } from "./router-catalog.ts";

const config = buildRouterConfig(
  parseProvidersFile(
    {
      version: 1,
      providers: [
        {
          name: "cheap",
          type: "mock",
          models: [
            { id: "small", maxOutputTokens: 500, price: { input: 1_000_000, output: 2_000_000 } },
            { id: "large", maxOutputTokens: 8_000, price: { input: 3_000_000, output: 9_000_000 } },
            { id: "unsized", price: { input: 1_000_000, output: 1_000_000 } },
            {
              id: "painter",
              capabilities: ["image"],
              price: { perImage: 40_000, images: { "1024x1024/high": 170_000 } },
            },
          ],
        },
      ],
      routes: [
        {
          name: "both",
          targets: [
            { provider: "cheap", model: "large" },
            { provider: "cheap", model: "small", tier: 1 },
          ],
        },
      ],
    },
    {},
  ),
  { source: "test" },
);
const messages = [{ content: "量子計算 🚀 and some ASCII" }];

const requests: Array<[string, JobPlanRequest]> = [
  [
    "a route: the smallest cap of its models, the dearest model's cost",
    { type: "text", selection: { model: "both" }, messages },
  ],
  [
    "maxTokens wins over the models' caps",
    { type: "text", selection: { model: "both" }, messages, maxTokens: 42 },
  ],
  ["a model without a cap", { type: "text", selection: { provider: "cheap", model: "unsized" }, messages }],
  ["an unroutable model", { type: "text", selection: { model: "nowhere" }, messages }],
  [
    "images by size and quality",
    {
      type: "image",
      selection: { model: "painter" },
      prompt: "a cat",
      n: 3,
      image: { size: "1024x1024", quality: "high" },
    },
  ],
];

describe("planJob", () => {
  it("holds the byte bound of the input plus the smallest candidate cap, and the dearest candidate's cost", () => {
    const plan = planJob(config, requests[0]![1]);
    const inputTokens = maxInputTokens(messages);
    expect(plan).toMatchObject({ inputTokens, outputTokens: 500, textTokens: inputTokens + 500, images: 0 });
    // large is dearer: 3 $/M input and 9 $/M output, on the same worst case.
    expect(plan.costMicroUsd).toBe(Math.ceil((inputTokens * 3_000_000 + 500 * 9_000_000) / 1_000_000));
    expect(plan.targets.map((target) => target.model)).toEqual(["large", "small"]);
  });

  it("caps at the job's maxTokens, else the default when no candidate declares one", () => {
    expect(planJob(config, requests[1]![1]).outputTokens).toBe(42);
    expect(planJob(config, requests[2]![1]).outputTokens).toBe(DEFAULT_OUTPUT_TOKENS);
    expect(planJob(undefined, requests[0]![1]).outputTokens).toBe(DEFAULT_OUTPUT_TOKENS);
  });

  it("gives an unroutable job no targets and no cost", () => {
    expect(planJob(config, requests[3]![1])).toMatchObject({ targets: [], costMicroUsd: 0 });
  });

  it("prices images by size and quality", () => {
    expect(planJob(config, requests[4]![1])).toMatchObject({
      images: 3,
      textTokens: 0,
      costMicroUsd: 510_000,
    });
  });

  it.each(requests)(
    "plans the same from the published catalog as from the configuration: %s",
    (_, request) => {
      const catalog = JSON.parse(JSON.stringify(describeRouterConfig(config)));
      expect(planJob(routingFromCatalog(catalog), request)).toEqual(planJob(config, request));
    },
  );

  it("cannot price with a catalog of a worker that publishes no prices", () => {
    const { prices: _, ...older } = describeRouterConfig(config);
    expect(routingFromCatalog(older)).toBeUndefined();
  });
});
