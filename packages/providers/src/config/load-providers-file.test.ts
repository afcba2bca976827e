// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { EXAMPLE_ENV, EXAMPLE_PATH } from "./__fixtures__/example-env.ts";
import { loadProvidersFile, readProvidersFile } from "./load-providers-file.ts";
import { ProvidersConfigError } from "./providers-config-error.ts";

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "genq-providers-"));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(directory, name);
  await writeFile(path, text);
  return path;
}

async function errorOf(promise: Promise<unknown>): Promise<ProvidersConfigError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ProvidersConfigError);
  return error as ProvidersConfigError;
}

async function issuesOf(promise: Promise<unknown>): Promise<string[]> {
  return (await errorOf(promise)).issues.map((issue) => `${issue.path}: ${issue.message}`);
}

describe("loadProvidersFile", () => {
  it("loads the commented example", async () => {
    const file = await loadProvidersFile(EXAMPLE_PATH, EXAMPLE_ENV);
    expect(file.providers.map((provider) => `${provider.name}:${provider.type}`)).toEqual([
      "openai:openai",
      "deepseek:openai-compatible",
      "ollama:openai-compatible",
      "anthropic:anthropic",
      "gemini:gemini",
      "mock:mock",
    ]);
    expect(file.routes.map((route) => route.name)).toEqual(["default", "cheap", "balanced", "images"]);
    expect(file.priceVersion).toBe("2026-11-01");
    // ${OPENAI_RPM:-500} and ${OLLAMA_BASE_URL:-...} fall back to their defaults.
    expect(file.providers[0]?.keys[0]?.rpm).toBe(500);
    expect(file.providers[2]?.baseUrl).toBe("http://127.0.0.1:11434/v1");
  });

  it("reads JSON as well as YAML, with the same result", async () => {
    const yamlPath = await write("providers.yml", await readFile(EXAMPLE_PATH, "utf8"));
    const jsonPath = await write(
      "providers.json",
      JSON.stringify(parseYaml(await readFile(EXAMPLE_PATH, "utf8")), null, 2),
    );
    const fromYaml = await readProvidersFile(yamlPath, EXAMPLE_ENV);
    const fromJson = await readProvidersFile(jsonPath, EXAMPLE_ENV);
    expect(fromJson.file).toEqual(fromYaml.file);
    expect(fromJson.source).not.toBe(fromYaml.source);
  });

  it("reports a YAML syntax error with the file and line, without quoting the line", async () => {
    const path = await write(
      "broken.yaml",
      ["version: 1", "providers:", "  - name: openai", "    apiKey: sk-literal-secret: oops", ""].join("\n"),
    );
    const error = await errorOf(loadProvidersFile(path, {}));
    expect(error.message).toContain(path);
    expect(error.issues[0]?.path).toMatch(/^line 4, column \d+$/);
    expect(error.message).not.toContain("sk-literal-secret");
  });

  it("reports a JSON syntax error with its line", async () => {
    const path = await write(
      "broken.json",
      '{\n  "version": 1,\n  "providers": [\n    { "name": "mock" "type": "mock" }\n  ]\n}\n',
    );
    const issues = await issuesOf(loadProvidersFile(path, {}));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatch(/^line 4, column \d+: /);
  });

  it("refuses duplicate keys", async () => {
    const path = await write(
      "duplicate.yaml",
      "version: 1\nversion: 1\nproviders: [{ name: mock, type: mock }]\n",
    );
    expect(await issuesOf(loadProvidersFile(path, {}))).toEqual([
      expect.stringMatching(/^line 2, column 1: .*unique/),
    ]);
  });

  it("names the path of a validation error in a YAML file", async () => {
    const path = await write(
      "providers.yaml",
      [
        "version: 1",
        "providers:",
        "  - { name: mock, type: mock }",
        "  - name: openai",
        "    type: openai",
        "    keys: [{ apiKey: '${OPENAI_API_KEY}' }]",
        "    models: [{ id: gpt-4o-mini }]",
      ].join("\n"),
    );
    expect(await issuesOf(loadProvidersFile(path, {}))).toEqual([
      "providers[1].keys[0].apiKey: environment variable OPENAI_API_KEY is not set",
      "providers[1].models[0].price: a model needs a price or zeroCost: true",
    ]);
  });

  it("refuses an empty file", async () => {
    const path = await write("empty.yaml", "# nothing yet\n");
    expect(await issuesOf(loadProvidersFile(path, {}))).toEqual(["(root): must be a map, not null"]);
  });

  it("refuses a missing file and an unknown extension", async () => {
    expect(await issuesOf(loadProvidersFile(join(directory, "absent.yaml"), {}))).toEqual([
      "(file): the file does not exist",
    ]);
    const toml = await write("providers.toml", "version = 1\n");
    expect(await issuesOf(loadProvidersFile(toml, {}))).toEqual([
      "(file): a providers file must end in .yaml, .yml or .json",
    ]);
  });
});
