/**
 * The delay before a retry: exponential from `baseMs` with jitter, or what
 * the provider asked for (Retry-After) when that is longer.
 */
export function retryDelayMs(options: {
  attemptsMade: number;
  baseMs: number;
  retryAfterMs?: number | undefined;
  random?: () => number;
  maxMs?: number;
}): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(
    options.baseMs * 2 ** Math.max(0, options.attemptsMade - 1),
    options.maxMs ?? 600_000,
  );
  // "Equal jitter": half the ceiling fixed, half random, so retries spread out but still back off.
  const jittered = Math.round(ceiling / 2 + (random() * ceiling) / 2);
  return Math.max(jittered, options.retryAfterMs ?? 0);
}
