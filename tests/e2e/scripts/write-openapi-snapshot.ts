/**
 * Writes `contract/openapi.json` from the API as it is built now (a harness app on its own
 * Postgres schema, no worker), for `@genq/client`'s generated types:
 * `node --import tsx tests/e2e/scripts/write-openapi-snapshot.ts`.
 */
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Harness } from "../src/harness.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const target = join(ROOT, "contract", "openapi.json");
const harness = await new Harness().start({ startWorker: false });
try {
  await writeFile(target, `${JSON.stringify(harness.app.swagger(), null, 2)}\n`);
  // In the repository's JSON style, so `pnpm lint` passes on the written file.
  execFileSync(join(ROOT, "node_modules/.bin/biome"), ["format", "--write", target], { stdio: "ignore" });
  console.log(`wrote ${target}`);
} finally {
  await harness.close();
}
