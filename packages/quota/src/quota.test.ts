import { describe, expect, it } from "vitest";
import { projectMonthEndCost } from "./month-end-projection.ts";
import { DEFAULT_PLANS, PlanLimits } from "./plans.ts";
import { isQuotaExceededError, QuotaExceededError } from "./quota-exceeded-error.ts";
import { daysInMonth, quotaPeriod, toDateLiteral } from "./quota-period.ts";

describe("quotaPeriod", () => {
  it("is the calendar month in UTC, resetting at the first instant of the next", () => {
    expect(quotaPeriod(new Date("2026-11-30T23:59:59.999Z"))).toEqual({
      start: new Date("2026-11-01T00:00:00.000Z"),
      resetsAt: new Date("2026-12-01T00:00:00.000Z"),
    });
    expect(quotaPeriod(new Date("2026-12-01T00:00:00.000Z")).start).toEqual(
      new Date("2026-12-01T00:00:00.000Z"),
    );
  });

  it("rolls over the year in December", () => {
    expect(quotaPeriod(new Date("2026-12-31T12:00:00.000Z")).resetsAt).toEqual(
      new Date("2027-01-01T00:00:00.000Z"),
    );
  });

  it("ignores the local time zone: 23:30 UTC on the 31st is still that month", () => {
    expect(toDateLiteral(quotaPeriod(new Date("2026-10-31T23:30:00-00:00")).start)).toBe("2026-10-01");
  });
});

describe("daysInMonth", () => {
  it("knows month lengths and leap years", () => {
    expect(daysInMonth(new Date("2026-11-10T00:00:00Z"))).toBe(30);
    expect(daysInMonth(new Date("2026-12-10T00:00:00Z"))).toBe(31);
    expect(daysInMonth(new Date("2026-02-10T00:00:00Z"))).toBe(28);
    expect(daysInMonth(new Date("2028-02-10T00:00:00Z"))).toBe(29);
  });
});

describe("projectMonthEndCost", () => {
  it("is the daily average so far, today included, times the days in the month", () => {
    // 1,000,000 over 10 days of a 30-day month.
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 1_000_000, now: new Date("2026-11-10T08:00:00Z") }),
    ).toEqual({
      periodStart: new Date("2026-11-01T00:00:00Z"),
      resetsAt: new Date("2026-12-01T00:00:00Z"),
      costSoFarMicroUsd: 1_000_000,
      daysElapsed: 10,
      daysInMonth: 30,
      projectedMicroUsd: 3_000_000,
    });
  });

  it("counts the first day of the month as one whole day", () => {
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 500, now: new Date("2026-12-01T00:00:01Z") })
        .projectedMicroUsd,
    ).toBe(15_500);
  });

  it("equals the cost so far on the last day of the month", () => {
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 123_457, now: new Date("2026-02-28T23:00:00Z") })
        .projectedMicroUsd,
    ).toBe(123_457);
  });

  it("rounds half up to whole micro-USD", () => {
    // 10 / 3 × 31 = 103.33… → 103; 1 / 2 × 31 = 15.5 → 16; 2 / 3 × 31 = 20.67 → 21.
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 10, now: new Date("2026-12-03T00:00:00Z") }).projectedMicroUsd,
    ).toBe(103);
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 1, now: new Date("2026-12-02T00:00:00Z") }).projectedMicroUsd,
    ).toBe(16);
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 2, now: new Date("2026-12-03T00:00:00Z") }).projectedMicroUsd,
    ).toBe(21);
  });

  it("stays exact for costs near 2^53", () => {
    const cost = 2 ** 52;
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: cost, now: new Date("2026-11-30T00:00:00Z") })
        .projectedMicroUsd,
    ).toBe(cost);
  });

  it("is zero without cost", () => {
    expect(
      projectMonthEndCost({ costSoFarMicroUsd: 0, now: new Date("2026-11-05T00:00:00Z") }).projectedMicroUsd,
    ).toBe(0);
  });
});

describe("plans", () => {
  it("default to the documented limits, each with a monthly cost budget", () => {
    expect(DEFAULT_PLANS).toEqual({
      basic: { textTokens: 100_000, images: 50, monthlyBudgetMicroUsd: 20_000_000 },
      professional: { textTokens: 500_000, images: 200, monthlyBudgetMicroUsd: 100_000_000 },
      enterprise: { textTokens: 2_000_000, images: 1_000, monthlyBudgetMicroUsd: 500_000_000 },
    });
  });

  it("validate as non-negative integers", () => {
    expect(PlanLimits.safeParse({ textTokens: 1, images: 1 }).success).toBe(true);
    expect(PlanLimits.safeParse({ textTokens: 1.5, images: 1 }).success).toBe(false);
    expect(PlanLimits.safeParse({ textTokens: 1, images: -1 }).success).toBe(false);
  });
});

describe("QuotaExceededError", () => {
  const error = new QuotaExceededError({
    kind: "text_tokens",
    used: 99_500,
    reserved: 400,
    limit: 100_000,
    requested: 1_000,
    resetsAt: new Date("2026-12-01T00:00:00.000Z"),
  });

  it("says what is used, reserved and asked for, when it resets and what to do", () => {
    expect(error.message).toBe(
      "text token quota exceeded: 99,500 used + 400 reserved of 100,000 this month, and this job needs up to 1,000; " +
        "resets 2026-12-01T00:00:00.000Z. To continue, lower max_tokens, wait for the reset or move to a larger plan",
    );
  });

  it("is a non-retryable quota_exceeded with the figures as details", () => {
    expect(error).toMatchObject({ name: "QuotaExceededError", code: "quota_exceeded", retryable: false });
    expect(error.details).toEqual({
      kind: "text_tokens",
      used: 99_500,
      reserved: 400,
      limit: 100_000,
      requested: 1_000,
      resetsAt: "2026-12-01T00:00:00.000Z",
    });
  });

  it("is recognized after crossing a process boundary as plain data", () => {
    const revived = JSON.parse(
      JSON.stringify({ code: error.code, message: error.message, retryable: false }),
    );
    expect(isQuotaExceededError(revived)).toBe(true);
    expect(isQuotaExceededError(new Error("quota_exceeded"))).toBe(false);
  });

  it("shows budgets in dollars", () => {
    const budget = new QuotaExceededError({
      kind: "cost_micro_usd",
      used: 9_500_000,
      reserved: 250_000,
      limit: 10_000_000,
      requested: 400_000,
      resetsAt: new Date("2026-12-01T00:00:00.000Z"),
    });
    expect(budget.message).toMatch(
      /^monthly budget exceeded: \$9\.50 used \+ \$0\.25 reserved of \$10\.00 this month, and this job may cost up to \$0\.40;/,
    );
  });
});
