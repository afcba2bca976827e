// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { describe, expect, it } from "vitest";
import { interpolateEnv, interpolateString } from "./interpolate-env.ts";

describe("interpolateEnv", () => {
  it("replaces ${NAME} with the variable's value, several times in one string", () => {
    expect(interpolateString("${SCHEME}://${HOST}:8080/v1", { SCHEME: "http", HOST: "ollama" })).toEqual({
      ok: true,
      value: "http://ollama:8080/v1",
    });
  });

  it("uses the default of ${NAME:-default} when the variable is unset or empty", () => {
    expect(interpolateString("${RPM:-500}", {})).toEqual({ ok: true, value: "500" });
    expect(interpolateString("${RPM:-500}", { RPM: "" })).toEqual({ ok: true, value: "500" });
    expect(interpolateString("${RPM:-500}", { RPM: "42" })).toEqual({ ok: true, value: "42" });
    expect(interpolateString("${URL:-http://a:1/v1}", {})).toEqual({ ok: true, value: "http://a:1/v1" });
    expect(interpolateString("x${EMPTY:-}y", {})).toEqual({ ok: true, value: "xy" });
  });

  it("reads $${ as a literal ${", () => {
    expect(interpolateString("cost $${HOME} and ${A}", { HOME: "/root", A: "a" })).toEqual({
      ok: true,
      value: "cost ${HOME} and a",
    });
    expect(interpolateString("a $ sign and $HOME stay", {})).toEqual({
      ok: true,
      value: "a $ sign and $HOME stay",
    });
  });

  it("reports an unset variable without a default at the value's path", () => {
    const result = interpolateEnv({ providers: [{ keys: [{ apiKey: "${OPENAI_API_KEY}" }] }] }, {});
    expect(result.issues).toEqual([
      {
        path: "providers[0].keys[0].apiKey",
        message: "environment variable OPENAI_API_KEY is not set",
      },
    ]);
    expect(result.failedPaths).toEqual(["providers[0].keys[0].apiKey"]);
  });

  it("counts an empty variable as unset", () => {
    expect(interpolateString("${KEY}", { KEY: "" })).toEqual({
      ok: false,
      errors: ["environment variable KEY is not set"],
    });
  });

  it("refuses malformed references without quoting what was inside the braces", () => {
    const pasted = interpolateString("${sk-live-1234567890abcdef}", {});
    expect(pasted).toEqual({
      ok: false,
      errors: ["invalid environment reference: write ${NAME} or ${NAME:-default}"],
    });
    expect(JSON.stringify(pasted)).not.toContain("1234567890abcdef");
    expect(interpolateString("${OPEN", {})).toMatchObject({
      ok: false,
      errors: [expect.stringMatching(/unterminated/)],
    });
    expect(interpolateString("${A:-${B}}", { B: "b" })).toMatchObject({
      ok: false,
      errors: [expect.stringMatching(/cannot contain another reference/)],
    });
  });

  it("interpolates string values only, so a value cannot add structure", () => {
    const result = interpolateEnv(
      { count: 3, enabled: true, nothing: null, list: ["${INJECT}"], "${KEY_NAME}": "kept" },
      { INJECT: "a: 1\n- b: [2]", KEY_NAME: "renamed" },
    );
    expect(result).toEqual({
      value: { count: 3, enabled: true, nothing: null, list: ["a: 1\n- b: [2]"], "${KEY_NAME}": "kept" },
      issues: [],
      failedPaths: [],
    });
  });

  it("leaves numbers from variables as strings (the schema coerces numeric fields)", () => {
    expect(interpolateEnv({ rpm: "${RPM}" }, { RPM: "500" }).value).toEqual({ rpm: "500" });
  });
});
