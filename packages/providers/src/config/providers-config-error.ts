/** One problem found in a providers file, located by its path in the file. */
export interface ProvidersConfigIssue {
  /** Where the problem is, e.g. `providers[1].models[0].price`, or `line 3, column 5` for a syntax error. */
  path: string;
  /** What is wrong, never quoting a secret. */
  message: string;
}

/**
 * A providers file (or the environment settings standing in for one) that cannot
 * be used. The message lists every issue, one per line, so start-up can stop
 * with it as is; issue messages never contain API key values.
 */
export class ProvidersConfigError extends Error {
  override readonly name = "ProvidersConfigError";
  readonly issues: ProvidersConfigIssue[];
  /** The file path, or `environment` for settings built by `defaultProvidersFile`. */
  readonly origin: string;

  constructor(origin: string, issues: ProvidersConfigIssue[]) {
    super(
      `Invalid providers configuration (${origin}):\n${issues.map((issue) => `  ${issue.path}: ${issue.message}`).join("\n")}`,
    );
    this.origin = origin;
    this.issues = issues;
  }

  /** True for a ProvidersConfigError, including one from another copy of this module. */
  static is(error: unknown): error is ProvidersConfigError {
    return (
      error instanceof ProvidersConfigError ||
      (error instanceof Error &&
        error.name === "ProvidersConfigError" &&
        Array.isArray((error as { issues?: unknown }).issues))
    );
  }
}

/** `["providers", 1, "models", 0, "price"]` → `providers[1].models[0].price`; the root is `(root)`. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_$][\w$]*$/.test(segment))
      text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text === "" ? "(root)" : text;
}
