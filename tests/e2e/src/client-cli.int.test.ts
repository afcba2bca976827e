import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startListeningHarness } from "./client-api.ts";
import { freePort, type Harness } from "./harness.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const CLI = join(ROOT, "packages/client/src/cli/main.ts");

/** util-linux `script`, which runs a command in a pseudo-terminal (to see what a terminal user sees). */
const HAS_SCRIPT = (() => {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the user CLI `genq` as a process, the way a shell does (stdout and stderr apart). */
function genq(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the user CLI `genq` against a real API", () => {
  let harness: Harness;
  let env: Record<string, string>;
  let directory: string;

  beforeAll(async () => {
    let url: string;
    ({ harness, url } = await startListeningHarness());
    const { apiKey } = await harness.createUser(undefined, "enterprise");
    env = { GENQ_URL: url, GENQ_API_KEY: apiKey };
    directory = await mkdtemp(join(tmpdir(), "genq-cli-"));
  });

  afterAll(async () => {
    await harness?.close();
    if (directory !== undefined) await rm(directory, { recursive: true, force: true });
  });

  it("submits a prompt and prints only the job id, so scripts can capture it", async () => {
    const run = await genq(["submit", "Hello from the CLI", "--priority", "high"], env);
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const job = await harness.getJob(env.GENQ_API_KEY!, id);
    expect(job).toMatchObject({ priority: "high", input: { prompt: "Hello from the CLI" } });
  });

  it("submits and waits, printing the generated text; --json prints the finished job", async () => {
    const run = await genq(["submit", "Wait for this", "--wait"], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Wait for this");
    const json = await genq(["submit", "Wait as JSON", "--wait", "--json", "--provider", "mock"], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: "completed", provider: "mock", type: "text" });
  });

  it("exits 1 with the job's error when the job fails", async () => {
    const run = await genq(["submit", "doomed", "--wait", "--provider", "nowhere"], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/failed: .+\[/);
  });

  it("watches a streamed job's live events to its end", async () => {
    const submitted = await genq(["submit", "watch me write", "--stream"], env);
    const id = submitted.stdout.trim();
    const run = await genq(["watch", id], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("watch me write");
    expect(run.stdout.trim().split("\n").at(-1)).toBe("job.completed");
    const json = await genq(["watch", id, "--json"], env);
    const events = json.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string });
    expect(events.at(-1)?.type).toBe("job.completed");
  });

  it("lists jobs, one per line, and as one JSON page", async () => {
    const run = await genq(["jobs", "ls", "--limit", "2"], env);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split("\n")).toHaveLength(2);
    const json = await genq(["jobs", "ls", "--json", "--status", "completed"], env);
    const page = JSON.parse(json.stdout) as { data: Array<{ status: string }> };
    expect(page.data.length).toBeGreaterThan(0);
    expect(page.data.every((job) => job.status === "completed")).toBe(true);
  });

  it("submits a JSONL file as a batch, waits, and writes its results as JSONL", async () => {
    const file = join(directory, "items.jsonl");
    await writeFile(
      file,
      `${Array.from({ length: 6 }, (_, index) => JSON.stringify({ prompt: `item ${index}` })).join("\n")}\n{"prompt": ""}\n`,
    );
    const submitted = await genq(["batch", "submit", file, "--wait"], env);
    expect(submitted.code).toBe(0);
    expect(submitted.stderr).toContain("1 invalid item(s)");
    expect(submitted.stderr).toContain("line 7:");
    // Not a terminal: no progress bar drawn into the captured stderr.
    expect(submitted.stderr).not.toContain("█");
    const [id, status] = submitted.stdout.trim().split(" ");
    expect(status).toBe("completed");

    const results = await genq(["batch", "results", id!], env);
    expect(results.code).toBe(0);
    const lines = results.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { itemIndex: number; status: string; result: { text: string } });
    expect(lines.map((line) => line.itemIndex)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(lines[4]?.result.text).toContain("item 4");

    const batch = await genq(["batch", "get", id!, "--json"], env);
    expect(JSON.parse(batch.stdout)).toMatchObject({ id, status: "completed", counts: { completed: 6 } });
  });

  it.skipIf(!HAS_SCRIPT)("draws the upload progress bar when stderr is a terminal", async () => {
    const file = join(directory, "terminal.jsonl");
    await writeFile(file, `${JSON.stringify({ prompt: "on a terminal" })}\n`);
    const command = [process.execPath, "--import", "tsx", CLI, "batch", "submit", file]
      .map((part) => `'${part}'`)
      .join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let terminal = "";
    child.stdout.on("data", (chunk: Buffer) => {
      terminal += chunk.toString();
    });
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(code).toBe(0);
    expect(terminal).toMatch(/upload █{30} 100% \d+ B \/ \d+ B/);
    expect(terminal).toMatch(/[0-9a-f-]{36}/);
  });

  it("prints usage and quota", async () => {
    const run = await genq(["usage"], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("plan enterprise");
    const json = await genq(["usage", "--json"], env);
    expect(JSON.parse(json.stdout).totals.jobs).toBeGreaterThan(0);
  });

  it("explains mistakes with exit status 2: no key, unknown command, unknown flag, missing argument", async () => {
    const noKey = await genq(["jobs", "ls"], { GENQ_URL: env.GENQ_URL });
    expect(noKey).toMatchObject({ code: 2, stdout: "" });
    expect(noKey.stderr).toContain("GENQ_API_KEY");
    const unknown = await genq(["launch"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command: launch");
    const flag = await genq(["submit", "x", "--colour", "red"], env);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--colour");
    const missing = await genq(["watch"], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("<job id>");
    const help = await genq(["--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("genq batch submit");
  });

  it("exits 1 naming the API's error code and request id, 3 when the API cannot be reached", async () => {
    const missing = await genq(["get", "0195f0c2-0000-7000-8000-000000000001"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/\[not_found, HTTP 404\] \(request [0-9a-f-]{36}\)/);
    const badKey = await genq(["usage", "--json"], { ...env, GENQ_API_KEY: "gq_wrong" });
    expect(badKey.code).toBe(1);
    expect(JSON.parse(badKey.stderr)).toMatchObject({ error: { code: "unauthorized", status: 401 } });
    const down = await genq(["jobs", "ls", "--url", `http://127.0.0.1:${await freePort()}`], env);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("could not reach the genq API");
  });
});
