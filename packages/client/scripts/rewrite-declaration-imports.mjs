// tsc rewrites relative `.ts` imports to `.js` in the emitted JavaScript only; the
// declarations keep `.ts`, which a consumer's compiler refuses. Rewrite them the same way.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const root = new URL("../dist/", import.meta.url).pathname;
for (const entry of await readdir(root, { recursive: true })) {
  if (!entry.endsWith(".d.ts")) continue;
  const path = join(root, entry);
  const text = await readFile(path, "utf8");
  await writeFile(path, text.replace(/(from\s+["']\.{1,2}\/[^"']+)\.ts(["'])/g, "$1.js$2"));
}
