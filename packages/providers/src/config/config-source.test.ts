// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildRouterConfig } from "./build-router-config.ts";
import { type ConfigSource, type ConfigSourceLogger, createConfigSource } from "./config-source.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";

function fileWithLatency(latencyMs: number): string {
  return [
    "version: 1",
    "providers:",
    "  - name: mock",
    "    type: mock",
    `    options: { latencyMs: ${latencyMs} }`,
    "  - name: openai",
    "    type: openai",
    "    keys: [{ apiKey: '${OPENAI_API_KEY}' }]",
    "    models: [{ id: gpt-4o-mini, price: { input: 150000, output: 600000 } }]",
    "",
  ].join("\n");
}

const BAD_FILE = [
  "version: 1",
  "providers:",
  "  - name: openai",
  "    type: openai",
  "    keys: [{ apiKey: '${OPENAI_API_KEY}' }]",
  "    models: [{ id: gpt-4o-mini }]",
  "",
].join("\n");

const env = { OPENAI_API_KEY: "sk-test-secret-0123456789" };

let directory: string;
let path: string;
let source: ConfigSource | undefined;
let logger: ConfigSourceLogger;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "genq-config-source-"));
  path = join(directory, "providers.yaml");
  await writeFile(path, fileWithLatency(1));
  logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
});

afterEach(async () => {
  source?.close();
  source = undefined;
  await rm(directory, { recursive: true, force: true });
});

function open(watch = false): Promise<ConfigSource> {
  return createConfigSource({
    path,
    env,
    logger,
    watch,
    build: (file, text) => buildRouterConfig(file, { source: text }),
  });
}

describe("createConfigSource", () => {
  it("throws the issues when the first load fails, so start-up stops", async () => {
    await writeFile(path, BAD_FILE);
    const error = await open().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProvidersConfigError);
    expect((error as Error).message).toContain(
      "providers[0].models[0].price: a model needs a price or zeroCost: true",
    );
  });

  it("swaps in the new config after a good edit and tells the listeners", async () => {
    source = await open();
    const before = source.current();
    const listener = vi.fn();
    source.onChange(listener);

    await writeFile(path, fileWithLatency(2));
    const result = await source.reload();

    expect(result).toEqual({ ok: true, version: source.current().version, changed: true });
    expect(source.current().version).not.toBe(before.version);
    expect(listener).toHaveBeenCalledExactlyOnceWith(source.current(), before);
    expect(logger.info).toHaveBeenCalledOnce();
  });

  it("keeps the config when the file did not change", async () => {
    source = await open();
    const before = source.current();
    const listener = vi.fn();
    source.onChange(listener);
    expect(await source.reload()).toEqual({ ok: true, version: before.version, changed: false });
    expect(source.current()).toBe(before);
    expect(listener).not.toHaveBeenCalled();
  });

  it("keeps the current config when the edited file is bad, and returns the issues", async () => {
    source = await open();
    const before = source.current();
    const listener = vi.fn();
    source.onChange(listener);

    await writeFile(path, BAD_FILE);
    const result = await source.reload();

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(ProvidersConfigError);
    expect(result.error.issues).toEqual([
      { path: "providers[0].models[0].price", message: "a model needs a price or zeroCost: true" },
    ]);
    expect(source.current()).toBe(before);
    expect(listener).not.toHaveBeenCalled();
    expect(logger.error).toHaveBeenCalledWith(
      expect.objectContaining({ issues: result.error.issues }),
      expect.stringContaining("keeping the current configuration"),
    );

    // A later good edit still goes through.
    await writeFile(path, fileWithLatency(3));
    expect(await source.reload()).toMatchObject({ ok: true, changed: true });
    expect(source.current().version).not.toBe(before.version);
  });

  it("keeps the current config when the file disappears or the build fails", async () => {
    let failBuild = false;
    source = await createConfigSource({
      path,
      env,
      build: (file, text) => {
        if (failBuild) throw new Error("client construction failed");
        return buildRouterConfig(file, { source: text });
      },
    });
    const before = source.current();
    await rm(path);
    expect(await source.reload()).toMatchObject({
      ok: false,
      error: { issues: [{ message: "the file does not exist" }] },
    });
    await writeFile(path, fileWithLatency(5));
    failBuild = true;
    expect(await source.reload()).toMatchObject({
      ok: false,
      error: { issues: [{ path: "(build)", message: "client construction failed" }] },
    });
    expect(source.current()).toBe(before);
  });

  it("runs concurrent reloads one after another", async () => {
    source = await open();
    await writeFile(path, fileWithLatency(7));
    const results = await Promise.all([source.reload(), source.reload()]);
    expect(results.map((result) => result.ok && result.changed)).toEqual([true, false]);
  });

  it("stops telling a listener that unsubscribed", async () => {
    source = await open();
    const listener = vi.fn();
    const unsubscribe = source.onChange(listener);
    unsubscribe();
    await writeFile(path, fileWithLatency(8));
    await source.reload();
    expect(listener).not.toHaveBeenCalled();
  });

  it("picks up an edit of a watched file", async () => {
    source = await open(true);
    const before = source.current().version;
    await writeFile(path, fileWithLatency(9));
    await vi.waitFor(() => expect(source?.current().version).not.toBe(before), {
      timeout: 5_000,
      interval: 50,
    });
  });

  it("picks up a watched file replaced by a rename, as editors save", async () => {
    source = await open(true);
    const before = source.current().version;
    const temporary = join(directory, ".providers.yaml.swp");
    await writeFile(temporary, fileWithLatency(10));
    await rename(temporary, path);
    await vi.waitFor(() => expect(source?.current().version).not.toBe(before), {
      timeout: 5_000,
      interval: 50,
    });
  });

  it("keeps the watched config through a bad save, then takes the fix", async () => {
    source = await open(true);
    const before = source.current();
    await writeFile(path, BAD_FILE);
    await vi.waitFor(() => expect(logger.error).toHaveBeenCalled(), { timeout: 5_000, interval: 50 });
    expect(source.current()).toBe(before);
    await writeFile(path, fileWithLatency(11));
    await vi.waitFor(() => expect(source?.current()).not.toBe(before), { timeout: 5_000, interval: 50 });
  });
});
