import {
  describeProviderOptionIssue,
  type ProviderCapability,
  type ProviderKind,
  providerOptionIssues,
} from "@genq/core";
import { ProviderError } from "./provider-error.ts";

/**
 * `providerOptions[name]` of a request, once every option in it is on the allow-list
 * of the adapter's kind (`ALLOWED_PROVIDER_OPTIONS` in `@genq/core`). The API refuses
 * other options at submit; this is the second check, where the request is built, so
 * an option that could multiply or reprice a call never reaches the wire, even from
 * a job stored before the allow-list existed.
 *
 * @throws {ProviderError} `invalid_request` naming the first refused option.
 */
export function allowedProviderOptions(
  provider: string,
  kind: ProviderKind,
  capability: ProviderCapability,
  providerOptions: Record<string, Record<string, unknown>> | undefined,
  /** The keys the adapter reads; default its own name. */
  keys: readonly string[] = [provider],
): Record<string, unknown> {
  const own: Record<string, Record<string, unknown>> = {};
  for (const key of keys) {
    const options = providerOptions?.[key];
    if (options !== undefined) own[key] = options;
  }
  const [issue] = providerOptionIssues(own, capability, () => kind);
  if (issue !== undefined) {
    throw new ProviderError("invalid_request", `${provider}: ${describeProviderOptionIssue(issue)}`, {
      provider,
    });
  }
  return Object.assign({}, ...keys.map((key) => own[key] ?? {}));
}

/**
 * The output cap an adapter sends when a request carries none (the worker always
 * sets one: the job's `maxTokens`, else the model's `maxOutputTokens`). Every call
 * carries a cap, so no call can produce more than was reserved for it.
 */
export const DEFAULT_MAX_OUTPUT_TOKENS = 1_024;
