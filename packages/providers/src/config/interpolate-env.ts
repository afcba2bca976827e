// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${NAME} is the providers file's own reference syntax, not a template.
import { formatIssuePath, type ProvidersConfigIssue } from "./providers-config-error.ts";

/** Environment variables as a plain record; packages never read `process.env` themselves. */
export type EnvironmentVariables = Record<string, string | undefined>;

/** The outcome of {@link interpolateEnv}. */
export interface InterpolationResult {
  /** The tree with every reference replaced; a string whose reference failed is left as it was. */
  value: unknown;
  issues: ProvidersConfigIssue[];
  /** The paths of the strings that failed, so later checks do not report them twice. */
  failedPaths: string[];
}

/** `$${` (an escaped literal), or a `${...}` reference, or an unterminated `${`. */
const TOKEN = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string value of a parsed
 * file with the environment's value; `$${` stands for a literal `${`. It works on
 * the parsed tree, never on the raw text, so a value cannot inject structure.
 * Like the shell's `:-`, an empty variable counts as unset. Numbers stay strings
 * here: the schema coerces numeric fields, so `apiKey: ${KEY}` is never a number.
 */
export function interpolateEnv(tree: unknown, env: EnvironmentVariables): InterpolationResult {
  const issues: ProvidersConfigIssue[] = [];
  const failedPaths: string[] = [];

  function visit(node: unknown, path: PropertyKey[]): unknown {
    if (typeof node === "string") {
      const result = interpolateString(node, env);
      if (result.ok) return result.value;
      const formatted = formatIssuePath(path);
      failedPaths.push(formatted);
      for (const message of result.errors) issues.push({ path: formatted, message });
      return node;
    }
    if (Array.isArray(node)) return node.map((item, index) => visit(item, [...path, index]));
    if (isPlainObject(node)) {
      return Object.fromEntries(
        Object.entries(node).map(([key, value]) => [key, visit(value, [...path, key])]),
      );
    }
    return node;
  }

  return { value: visit(tree, []), issues, failedPaths };
}

type StringResult = { ok: true; value: string } | { ok: false; errors: string[] };

/** Interpolates one string; errors name variables, never values. */
export function interpolateString(text: string, env: EnvironmentVariables): StringResult {
  const errors: string[] = [];
  const value = text.replace(TOKEN, (token, inner: string | undefined) => {
    if (token === "$${") return "${";
    if (inner === undefined) {
      errors.push("unterminated ${ (write $${ for a literal ${)");
      return token;
    }
    const match = REFERENCE.exec(inner);
    if (match === null) {
      // The inner text is not quoted back: it may be a secret pasted into the braces.
      errors.push("invalid environment reference: write ${NAME} or ${NAME:-default}");
      return token;
    }
    const name = match[1] as string;
    const fallback = match[2];
    if (fallback?.includes("${")) {
      errors.push(`the default of \${${name}:-...} cannot contain another reference`);
      return token;
    }
    const found = env[name];
    if (found !== undefined && found !== "") return found;
    if (fallback !== undefined) return fallback;
    errors.push(`environment variable ${name} is not set`);
    return token;
  });
  return errors.length === 0 ? { ok: true, value } : { ok: false, errors };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
