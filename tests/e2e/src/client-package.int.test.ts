import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startListeningHarness } from "./client-api.ts";
import { freePort, type Harness } from "./harness.ts";

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLIENT = join(ROOT, "packages/client");
const EXAMPLE = join(CLIENT, "examples/quickstart.ts");

/** Runs a command; resolves with its exit code and output instead of throwing on a non-zero exit. */
async function exec(
  file: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("@genq/client as a new integrator gets it", () => {
  let harness: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    let url: string;
    ({ harness, url } = await startListeningHarness({
      workerEnv: { GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" },
    }));
    const { apiKey } = await harness.createUser(undefined, "enterprise");
    env = { GENQ_URL: url, GENQ_API_KEY: apiKey };
  });

  afterAll(async () => {
    await harness?.close();
  });

  it("runs the quickstart example: submit, wait, stream, batch and a verified webhook", async () => {
    const port = await freePort();
    const result = await exec(process.execPath, ["--import", "tsx", EXAMPLE], {
      cwd: CLIENT,
      env: { ...env, WEBHOOK_PORT: String(port) },
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^waited: completed: .*A haiku about queues/m);
    expect(result.stdout).toContain("A limerick, live");
    expect(result.stdout).toMatch(/^item 0: completed$/m);
    expect(result.stdout).toMatch(/^item 1: completed$/m);
    expect(result.stdout).toMatch(/^webhook: job\.completed [0-9a-f-]{36}$/m);
  });

  it("keeps the quickstart free of casts, non-null assertions and any", async () => {
    const code = (await readFile(EXAMPLE, "utf8"))
      .split("\n")
      .filter((line) => !line.trimStart().startsWith("//"))
      .join("\n");
    expect(code).not.toMatch(/\bas\s+[A-Z{[]|\bas\s+(unknown|any|never|const)\b/);
    expect(code).not.toMatch(/\w!\.|\w!\)|\bany\b|@ts-/);
  });

  describe("from a packed tarball", () => {
    let directory: string;

    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), "genq-client-package-"));
      const packed = await exec("pnpm", ["pack", "--pack-destination", directory], { cwd: CLIENT });
      expect(packed.code, packed.stderr).toBe(0);
      const tarball = (await readdir(directory)).find((name) => name.endsWith(".tgz"));
      if (tarball === undefined) throw new Error(`no tarball in ${directory}: ${packed.stdout}`);
      await writeFile(
        join(directory, "package.json"),
        JSON.stringify({ name: "integrator", private: true, type: "module" }),
      );
      // The package has no dependencies: nothing is fetched from a registry.
      const installed = await exec(
        "npm",
        ["install", `./${tarball}`, "--offline", "--no-audit", "--no-fund", "--no-package-lock"],
        { cwd: directory },
      );
      expect(installed.code, installed.stderr).toBe(0);
    }, 180_000);

    afterAll(async () => {
      if (directory !== undefined) await rm(directory, { recursive: true, force: true });
    });

    it("ships compiled JavaScript and declarations only, with no runtime dependencies", async () => {
      const manifest = JSON.parse(
        await readFile(join(directory, "node_modules/@genq/client/package.json"), "utf8"),
      ) as Record<string, unknown>;
      expect(manifest.exports).toEqual({ ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } });
      expect(manifest.dependencies).toBeUndefined();
      const files = await readdir(join(directory, "node_modules/@genq/client"), { recursive: true });
      expect(files.some((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toBe(false);
      expect(files).toContain(join("dist", "index.d.ts"));
    });

    it("is imported from plain Node and submits and waits for a job against a real API", async () => {
      await writeFile(
        join(directory, "submit.mjs"),
        [
          'import { GenqClient, NotFoundError } from "@genq/client";',
          "const genq = new GenqClient({ baseUrl: process.env.GENQ_URL, apiKey: process.env.GENQ_API_KEY });",
          'const job = await genq.jobs.create({ type: "text", input: { prompt: "from the tarball" } });',
          "const done = await genq.jobs.wait(job.id, { timeoutMs: 30000 });",
          'const missing = await genq.jobs.get("0195f0c2-0000-7000-8000-000000000001").catch((error) => error);',
          "console.log(JSON.stringify({ status: done.status, text: done.result.text, notFound: missing instanceof NotFoundError }));",
        ].join("\n"),
      );
      const result = await exec(process.execPath, ["submit.mjs"], { cwd: directory, env });
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ status: "completed", notFound: true });
      expect(JSON.parse(result.stdout).text).toContain("from the tarball");
    });

    it("installs the genq command, which submits and waits", async () => {
      const result = await exec(
        join(directory, "node_modules/.bin/genq"),
        ["submit", "from the installed bin", "--wait"],
        { cwd: directory, env },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("from the installed bin");
    });

    it("type-checks the quickstart against the published declarations, strictly and without casts", async () => {
      await copyFile(EXAMPLE, join(directory, "quickstart.ts"));
      await writeFile(
        join(directory, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2023",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            noUncheckedIndexedAccess: true,
            exactOptionalPropertyTypes: true,
            noEmit: true,
            skipLibCheck: false,
            types: ["node"],
            typeRoots: [join(ROOT, "node_modules/@types")],
          },
          files: ["quickstart.ts"],
        }),
      );
      const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
      const result = await exec(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: directory });
      expect(result.stdout + result.stderr).toBe("");
      expect(result.code).toBe(0);
      // A full check of the declarations (skipLibCheck off) takes a minute on a busy two-core machine.
    }, 240_000);
  });
});
