// Generates the Prisma client. Prisma 7's CLI downloads its schema engine before
// `generate` even though `generate` never runs it; pointing PRISMA_SCHEMA_ENGINE_BINARY
// at any existing file skips the download, so this works offline too.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) {
  env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);
}
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";
const result = spawnSync("pnpm", ["exec", "prisma", "generate"], {
  cwd: root,
  env,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
