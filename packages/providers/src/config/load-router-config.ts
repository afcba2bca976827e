import type { RouterConfig } from "../router/types.ts";
import { type BuildRouterConfigOptions, buildRouterConfig } from "./build-router-config.ts";
import type { EnvironmentVariables } from "./interpolate-env.ts";
import { readProvidersFile } from "./load-providers-file.ts";

/** Reads, validates and builds a providers file in one step; `source` is the file's text. */
export async function loadRouterConfig(
  path: string,
  env: EnvironmentVariables,
  options: Omit<BuildRouterConfigOptions, "source" | "origin"> = {},
): Promise<RouterConfig> {
  const { file, source } = await readProvidersFile(path, env);
  return buildRouterConfig(file, { origin: path, ...options, source });
}
