import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parseDocument, type YAMLError } from "yaml";
import { type EnvironmentVariables, interpolateEnv } from "./interpolate-env.ts";
import { parseProvidersFile } from "./parse-providers-file.ts";
import { ProvidersConfigError, type ProvidersConfigIssue } from "./providers-config-error.ts";
import type { ProvidersFile } from "./providers-file.ts";

/** A loaded providers file and the text it came from (hashed into the config's version). */
export interface LoadedProvidersFile {
  file: ProvidersFile;
  source: string;
}

const EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

/**
 * Reads, parses (YAML or JSON, by extension), interpolates and validates a
 * providers file. Every failure, an unreadable file included, is a
 * {@link ProvidersConfigError} naming the file.
 */
export async function readProvidersFile(
  path: string,
  env: EnvironmentVariables,
): Promise<LoadedProvidersFile> {
  checkExtension(path);
  let source: string;
  try {
    source = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ProvidersConfigError(path, [
      {
        path: "(file)",
        message:
          code === "ENOENT" ? "the file does not exist" : `cannot read the file (${code ?? String(error)})`,
      },
    ]);
  }
  return { file: parseProvidersText(source, path, env), source };
}

/** {@link readProvidersFile} without the source text. */
export async function loadProvidersFile(path: string, env: EnvironmentVariables): Promise<ProvidersFile> {
  return (await readProvidersFile(path, env)).file;
}

/**
 * Parses the text of a providers file; `path` names it in errors and picks the
 * syntax by its extension. JSON is read with the YAML parser (JSON is YAML), which
 * reports the line and column of a syntax error and refuses duplicate keys.
 */
export function parseProvidersText(text: string, path: string, env: EnvironmentVariables): ProvidersFile {
  return parseProvidersLayer(text, path, env).file;
}

/** A providers file as the base layer under the database's (decision 0023). */
export interface ProvidersFileLayer extends LoadedProvidersFile {
  /** The file as written, `${ENV}` references expanded: what the database layer is merged into. */
  data: Record<string, unknown>;
}

/** {@link readProvidersFile}, with the file's data before defaults, for merging layers. */
export async function readProvidersLayer(
  path: string,
  env: EnvironmentVariables,
): Promise<ProvidersFileLayer> {
  const { source } = await readProvidersFile(path, env);
  return { ...parseProvidersLayer(source, path, env), source };
}

function parseProvidersLayer(
  text: string,
  path: string,
  env: EnvironmentVariables,
): { file: ProvidersFile; data: Record<string, unknown> } {
  checkExtension(path);
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ProvidersConfigError(path, document.errors.map(syntaxIssue));
  }
  let data: unknown;
  try {
    // The alias limit stops a "billion laughs" file from expanding without end.
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ProvidersConfigError(path, [{ path: "(file)", message: (error as Error).message }]);
  }
  const file = parseProvidersFile(data, env, { origin: path });
  // Valid, so the interpolation succeeded and the data is a map.
  return { file, data: interpolateEnv(data, env).value as Record<string, unknown> };
}

function checkExtension(path: string): void {
  if (!EXTENSIONS.has(extname(path).toLowerCase())) {
    throw new ProvidersConfigError(path, [
      { path: "(file)", message: "a providers file must end in .yaml, .yml or .json" },
    ]);
  }
}

/**
 * The parser's message without its excerpt of the source: the excerpt could show
 * a secret written into the file, and the line and column are enough to find it.
 */
function syntaxIssue(error: YAMLError): ProvidersConfigIssue {
  const position = error.linePos?.[0];
  const message =
    error.code === "MULTIPLE_DOCS"
      ? "a providers file holds one YAML document (remove the --- separator)"
      : (error.message.split("\n")[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, "");
  return {
    path: position === undefined ? "(file)" : `line ${position.line}, column ${position.col}`,
    message,
  };
}
