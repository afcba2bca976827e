/**
 * Counts calls per key so the mock provider can fail the first N attempts of a
 * request and then succeed. Attempts of one job may run in different worker
 * processes, so the worker passes a Redis-backed implementation; tests in one
 * process can use {@link createInMemoryFailureCounter}.
 */
export interface FailureCounter {
  /** Adds one to the count for `key` and returns the new count (1 on the first call). */
  increment(key: string): Promise<number>;
}

/** A {@link FailureCounter} that lives in this process only. */
export function createInMemoryFailureCounter(): FailureCounter {
  const counts = new Map<string, number>();
  return {
    async increment(key) {
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      return count;
    },
  };
}
