/**
 * When each attempt of a message runs, counted from the previous one: immediately,
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Standard Webhooks' suggestion; eight
 * attempts over about 28 hours).
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** Parses `0,5000,300000` (milliseconds) into a schedule; throws on a bad entry. */
export function parseRetrySchedule(value: string): number[] {
  const entries = value.split(",").map((entry) => entry.trim());
  const schedule = entries.map(Number);
  if (entries.length === 0 || schedule.some((delay) => !Number.isInteger(delay) || delay < 0)) {
    throw new Error("must be comma-separated non-negative whole milliseconds, e.g. 0,5000,300000");
  }
  return schedule;
}

/**
 * The delay before the next attempt after `failuresInARow` failed attempts in the
 * current cycle, or undefined when the schedule is exhausted. A redelivered
 * message starts a new cycle once the previous one was used up, so positions are
 * counted modulo the schedule's length. `jitter` spreads retries by ±10 %.
 */
export function nextRetryDelayMs(
  schedule: readonly number[],
  failuresInARow: number,
  random: () => number = Math.random,
): number | undefined {
  if (schedule.length === 0 || failuresInARow < 1) return undefined;
  const position = ((failuresInARow - 1) % schedule.length) + 1;
  const base = schedule[position];
  if (base === undefined) return undefined;
  return Math.max(0, Math.round(base * (0.9 + random() * 0.2)));
}
