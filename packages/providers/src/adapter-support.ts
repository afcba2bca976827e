import { ProviderError } from "./provider-error.ts";

/**
 * The model for a call: the request's, else the adapter's default. Without either
 * the call cannot be made, which is the caller's mistake (`invalid_request`).
 */
export function resolveModelOrThrow(provider: string, model: string, fallback: string | undefined): string {
  const resolved = model || fallback;
  if (!resolved) {
    throw new ProviderError(
      "invalid_request",
      `${provider}: no model given and no default model configured`,
      {
        provider,
      },
    );
  }
  return resolved;
}

/**
 * `canceled` for anything that ends a call whose signal has aborted, else
 * undefined. The abort reason can be any value, and whatever the SDK saw last (a
 * reset socket, a cut stream) is a consequence of the caller giving up.
 */
export function canceledIfAborted(
  provider: string,
  error: unknown,
  signal: AbortSignal | undefined,
): ProviderError | undefined {
  if (!signal?.aborted) return undefined;
  if (error instanceof ProviderError && error.code === "canceled") return error;
  return new ProviderError("canceled", `${provider}: the request was canceled`, {
    provider,
    cause: signal.reason,
  });
}
