/** Writes `src/generated/openapi.ts` from `contract/openapi.json` (`pnpm --filter @genq/client generate`). */
import { writeFile } from "node:fs/promises";
import { GENERATED_TYPES_PATH, renderGeneratedTypes } from "./generated-types.ts";

await writeFile(GENERATED_TYPES_PATH, await renderGeneratedTypes());
console.log(`wrote ${GENERATED_TYPES_PATH}`);
