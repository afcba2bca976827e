import {
  buildRouterConfig,
  DEFAULT_OUTPUT_TOKENS as DEFAULT_RESERVED_OUTPUT_TOKENS,
  maxInputTokens,
  parseProvidersFile,
} from "@genq/providers";

import { describe, expect, it } from "vitest";
import { textReservation } from "./text-reservation.ts";

const config = buildRouterConfig(
  parseProvidersFile(
    {
      version: 1,
      providers: [
        {
          name: "local",
          type: "mock",
          models: [
            { id: "small", maxOutputTokens: 500 },
            { id: "large", maxOutputTokens: 8_000 },
            { id: "unsized" },
          ],
        },
      ],
      routes: [
        {
          name: "both",
          targets: [
            { provider: "local", model: "large" },
            { provider: "local", model: "small", tier: 1 },
          ],
        },
      ],
    },
    {},
  ),
  { source: "test" },
);
const messages = [{ role: "user" as const, content: "量子計算 🚀" }];

describe("textReservation", () => {
  it("reserves the input's byte bound plus the job's maxTokens, and caps the call there", () => {
    expect(textReservation(config, { provider: "local", model: "large" }, messages, 42)).toEqual({
      inputTokens: maxInputTokens(messages),
      outputTokens: 42,
      textTokens: maxInputTokens(messages) + 42,
    });
  });

  it("caps a job without maxTokens at its model's maxOutputTokens", () => {
    expect(
      textReservation(config, { provider: "local", model: "large" }, messages, undefined).outputTokens,
    ).toBe(8_000);
  });

  it("caps a routed job at the smallest maxOutputTokens of its candidates, which every one accepts", () => {
    expect(textReservation(config, { model: "both" }, messages, undefined).outputTokens).toBe(500);
  });

  it("falls back to the documented default when the catalog gives no maxOutputTokens, or cannot route", () => {
    for (const selection of [{ provider: "local", model: "unsized" }, { provider: "nowhere" }]) {
      expect(textReservation(config, selection, messages, undefined).outputTokens).toBe(
        DEFAULT_RESERVED_OUTPUT_TOKENS,
      );
    }
  });
});
