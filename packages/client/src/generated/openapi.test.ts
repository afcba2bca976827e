import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { GENERATED_TYPES_PATH, renderGeneratedTypes } from "../../scripts/generated-types.ts";

describe("src/generated/openapi.ts", () => {
  it("is what openapi-typescript writes from contract/openapi.json now (run `pnpm --filter @genq/client generate`)", async () => {
    const committed = await readFile(GENERATED_TYPES_PATH, "utf8");
    expect(committed === (await renderGeneratedTypes())).toBe(true);
  });
});
