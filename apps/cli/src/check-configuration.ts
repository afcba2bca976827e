import { loadApiEnv } from "@genq/api/env";
import { describeStartupError } from "@genq/core";
import { loadWorkerEnv } from "@genq/worker/env";

/**
 * The configuration problems the API and the worker would each stop on, found
 * before `pnpm start` migrates or spawns anything: one line per bad variable,
 * saying what to change. A problem both share is listed once. Empty when both
 * configurations are valid. (Problems only a running process can see, such as a
 * port in use or a missing providers file, are reported by that process.)
 */
export function checkConfiguration(source: Record<string, string | undefined> = process.env): string[] {
  const problems = new Set<string>();
  for (const load of [loadApiEnv, loadWorkerEnv]) {
    try {
      load(source);
    } catch (error) {
      for (const problem of describeStartupError(error)) problems.add(problem);
    }
  }
  return [...problems];
}
