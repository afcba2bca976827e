import type { z } from "zod";
import { type EnvironmentVariables, interpolateEnv } from "./interpolate-env.ts";
import {
  formatIssuePath,
  ProvidersConfigError,
  type ProvidersConfigIssue,
} from "./providers-config-error.ts";
import { ProvidersFile } from "./providers-file.ts";

/** Options for {@link parseProvidersFile} and {@link validateProvidersFile}. */
export interface ParseProvidersFileOptions {
  /** Names the configuration in the error: the file path, or `environment`. Default `providers file`. */
  origin?: string;
}

/**
 * Interpolates `${ENV}` references in an already parsed file (YAML or JSON,
 * turned into plain data), validates it and fills in its defaults. Throws a
 * {@link ProvidersConfigError} listing every problem with its path.
 */
export function parseProvidersFile(
  data: unknown,
  env: EnvironmentVariables,
  options: ParseProvidersFileOptions = {},
): ProvidersFile {
  const interpolated = interpolateEnv(data, env);
  return validate(interpolated.value, options.origin, interpolated.issues, interpolated.failedPaths);
}

/**
 * Validates data already in final form (no `${ENV}` references are expanded),
 * such as the file {@link defaultProvidersFile} builds from environment settings.
 */
export function validateProvidersFile(data: unknown, options: ParseProvidersFileOptions = {}): ProvidersFile {
  return validate(data, options.origin, [], []);
}

function validate(
  data: unknown,
  origin: string | undefined,
  earlierIssues: ProvidersConfigIssue[],
  failedPaths: string[],
): ProvidersFile {
  const result = ProvidersFile.safeParse(data, { error: describeIssue });
  const schemaIssues = result.success ? [] : result.error.issues.flatMap(toConfigIssues);
  // A failed reference already has its issue; the leftover `${X}` text would only add a second one.
  const issues = [
    ...earlierIssues,
    ...schemaIssues.filter(
      (issue) =>
        !failedPaths.some(
          (failed) =>
            issue.path === failed ||
            issue.path.startsWith(`${failed}.`) ||
            issue.path.startsWith(`${failed}[`),
        ),
    ),
  ];
  if (issues.length > 0 || !result.success)
    throw new ProvidersConfigError(origin ?? "providers file", issues);
  return result.data;
}

/** Messages for zod's built-in checks: short, and never quoting the value (it may be a secret). */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.input === undefined && issue.code !== "custom") return "is required";
  if (issue.code === "invalid_type")
    return `must be ${article(issue.expected)}, not ${describeType(issue.input)}`;
  return undefined;
}

/** One issue per unknown key, at the key's own path, so the message points at the typo. */
function toConfigIssues(issue: z.core.$ZodIssue): ProvidersConfigIssue[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      path: formatIssuePath([...issue.path, key]),
      message: "is not a known field (check the spelling)",
    }));
  }
  return [{ path: formatIssuePath(issue.path), message: issue.message }];
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  return article(typeof value);
}

function article(type: string): string {
  switch (type) {
    case "object":
    case "record":
      return "a map";
    case "array":
      return "a list";
    case "int":
      return "a whole number";
    default:
      return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
  }
}
