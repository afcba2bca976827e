/**
 * A quota period: one calendar month in UTC. `resetsAt` is the first instant of
 * the next month, the moment the counters start again from zero.
 */
export interface QuotaPeriod {
  start: Date;
  resetsAt: Date;
}

/** The period `now` falls in. */
export function quotaPeriod(now: Date): QuotaPeriod {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  return { start: new Date(Date.UTC(year, month, 1)), resetsAt: new Date(Date.UTC(year, month + 1, 1)) };
}

/** How many days the month of `now` (UTC) has. */
export function daysInMonth(now: Date): number {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
}

/** A period start as the `date` literal Postgres takes: `YYYY-MM-DD`. */
export function toDateLiteral(date: Date): string {
  return date.toISOString().slice(0, 10);
}
