import { describe, expect, it } from "vitest";
import { PlansFromJson } from "./plans.ts";

describe("PlansFromJson", () => {
  it("names an unknown plan and lists the valid ones", () => {
    const result = PlansFromJson.safeParse('{"gold":{"textTokens":1}}');
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.message)).toEqual([
      'names an unknown plan "gold"; the plans are basic, professional, enterprise',
    ]);
  });

  it("refuses text that is not JSON", () => {
    expect(PlansFromJson.safeParse("basic=100").error?.issues[0]?.message).toMatch(/^must be JSON/);
  });

  it("takes known plans", () => {
    expect(PlansFromJson.parse('{"basic":{"textTokens":5}}')).toEqual({ basic: { textTokens: 5 } });
  });
});
