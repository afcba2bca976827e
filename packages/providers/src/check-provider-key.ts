import { GenqError } from "@genq/core";
import type { Provider } from "./provider.ts";
import { ProviderError } from "./provider-error.ts";

/** What a key check found: the key works (and which models it sees), or the provider's refusal. */
export type ProviderKeyCheck =
  | { valid: true; models: string[] }
  | {
      valid: false;
      /** genq's code for the failure (`auth_failed`, `credit_exhausted`, `provider_unavailable`, ...). */
      errorCode: string;
      /** The provider's own error code or type (OpenAI's `invalid_api_key`), when it sent one. */
      providerCode?: string;
      /** The provider's HTTP status, when it answered. */
      httpStatus?: number;
      message: string;
    };

/**
 * Checks a key with the cheapest call that proves it: listing models (no tokens
 * spent). A provider without a model list falls back to its health check.
 */
export async function checkProviderKey(client: Provider, signal?: AbortSignal): Promise<ProviderKeyCheck> {
  const options = signal === undefined ? {} : { signal };
  if (client.listModels === undefined) {
    const health = await client.healthCheck(options);
    return health.ok
      ? { valid: true, models: [] }
      : { valid: false, errorCode: "provider_unavailable", message: health.message ?? "health check failed" };
  }
  try {
    return { valid: true, models: await client.listModels(options) };
  } catch (error) {
    if (!(error instanceof GenqError)) throw error;
    const providerCode = error instanceof ProviderError ? providerErrorCode(error.cause) : undefined;
    return {
      valid: false,
      errorCode: error.code,
      ...(providerCode === undefined ? {} : { providerCode }),
      ...(error instanceof ProviderError && error.status !== undefined ? { httpStatus: error.status } : {}),
      message: error.message,
    };
  }
}

/** The code an SDK error carries: OpenAI's `code`, Anthropic's `error.error.type`, Gemini's `status`. */
function providerErrorCode(cause: unknown): string | undefined {
  if (cause === null || typeof cause !== "object") return undefined;
  const error = cause as {
    code?: unknown;
    error?: { type?: unknown; error?: { type?: unknown; status?: unknown } };
  };
  for (const candidate of [
    error.code,
    error.error?.error?.type,
    error.error?.type,
    error.error?.error?.status,
  ]) {
    if (typeof candidate === "string" && candidate.length > 0) return candidate;
  }
  return undefined;
}
