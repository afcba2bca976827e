import { daysInMonth, quotaPeriod } from "./quota-period.ts";

/** A month-end cost projection from the month's daily average so far. */
export interface MonthEndProjection {
  periodStart: Date;
  resetsAt: Date;
  /** Cost of the month up to now, micro-USD. */
  costSoFarMicroUsd: number;
  /** Days of the month elapsed, today included (1 on the first of the month). */
  daysElapsed: number;
  daysInMonth: number;
  /** `costSoFar / daysElapsed × daysInMonth`, rounded half up to whole micro-USD. */
  projectedMicroUsd: number;
}

/**
 * Projects the month's cost: the daily average so far (today counted as a whole
 * day, so the projection never divides by zero and is conservative early in a
 * day) times the days in the month. Integer arithmetic, so the result is exact
 * for any cost that fits a number.
 */
export function projectMonthEndCost(input: { costSoFarMicroUsd: number; now: Date }): MonthEndProjection {
  const { start, resetsAt } = quotaPeriod(input.now);
  const daysElapsed = input.now.getUTCDate();
  const days = daysInMonth(input.now);
  const numerator = BigInt(input.costSoFarMicroUsd) * BigInt(days);
  const denominator = BigInt(daysElapsed);
  const projected = (numerator * 2n + denominator) / (denominator * 2n);
  return {
    periodStart: start,
    resetsAt,
    costSoFarMicroUsd: input.costSoFarMicroUsd,
    daysElapsed,
    daysInMonth: days,
    projectedMicroUsd: Number(projected),
  };
}
