/**
 * Writes the API's OpenAPI document to contract/openapi.json (`pnpm contract:write`);
 * `--check` fails instead when the committed file differs from the routes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildOpenApiDocument } from "../src/openapi-document.ts";

const target = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "contract", "openapi.json");
const text = `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`;
if (process.argv.includes("--check")) {
  const committed = await readFile(target, "utf8").catch(() => "");
  if (committed !== text) {
    process.stderr.write("contract/openapi.json is not current: run `pnpm contract:write` and commit it\n");
    process.exit(1);
  }
} else {
  await writeFile(target, text);
  process.stdout.write(`wrote ${target}\n`);
}
process.exit(0);
