import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isQuotaExceededError, QuotaExceededError } from "./quota-exceeded-error.ts";
import type { SettlementExcess } from "./quota-ledger.ts";
import { createLedgerTestContext, type LedgerTestContext, usageRow } from "./test-fixtures.ts";

let context: LedgerTestContext;

beforeAll(async () => {
  context = await createLedgerTestContext();
});

beforeEach(() => {
  context.clock.now = new Date("2026-11-15T12:00:00.000Z");
});

afterAll(async () => {
  await context?.close();
});

describe("reserve", () => {
  it("holds the amounts and reports them as reserved", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    const result = await ledger.reserve({ jobId, userId, textTokens: 1_500 });

    expect(result.outcome).toBe("reserved");
    expect(result.reservation).toMatchObject({
      jobId,
      userId,
      textTokens: 1_500,
      images: 0,
      costMicroUsd: 0,
      status: "reserved",
      periodStart: new Date("2026-11-01T00:00:00.000Z"),
    });
    expect(await ledger.reservation(jobId)).toEqual(result.reservation);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 1_500 });
    // A kind with amount 0 is neither checked nor given a row.
    expect(await usageRow(context.db, userId, "images")).toBeNull();
  });

  it("returns the existing reservation to a retried job instead of holding twice", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    await ledger.reserve({ jobId, userId, textTokens: 1_000 });
    const again = await ledger.reserve({ jobId, userId, textTokens: 5_000 });

    expect(again.outcome).toBe("already_reserved");
    expect(again.reservation.textTokens).toBe(1_000);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 1_000 });
  });

  it("holds once when two deliveries of one job reserve at the same moment", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    const results = await Promise.all(
      Array.from({ length: 8 }, () => ledger.reserve({ jobId, userId, textTokens: 1_000 })),
    );

    expect(results.filter((result) => result.outcome === "reserved")).toHaveLength(1);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 1_000 });
  });

  it("refuses a job that does not fit with quota_exceeded, holding nothing", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const first = await context.createJob(userId);
    const second = await context.createJob(userId);
    await ledger.reserve({ jobId: first, userId, textTokens: 99_600 });

    const error = await ledger.reserve({ jobId: second, userId, textTokens: 500 }).catch((caught) => caught);

    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(isQuotaExceededError(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.details).toEqual({
      kind: "text_tokens",
      used: 0,
      reserved: 99_600,
      limit: 100_000,
      requested: 500,
      resetsAt: "2026-12-01T00:00:00.000Z",
    });
    expect(await ledger.reservation(second)).toBeNull();
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 99_600 });
  });

  it("holds nothing of any kind when one kind does not fit", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    await ledger.setUserLimits(userId, { monthlyBudgetMicroUsd: 1_000 });
    const jobId = await context.createJob(userId);

    await expect(
      ledger.reserve({ jobId, userId, textTokens: 10, costMicroUsd: 2_000 }),
    ).rejects.toMatchObject({
      code: "quota_exceeded",
      details: { kind: "cost_micro_usd", limit: 1_000, requested: 2_000 },
    });
    expect(await usageRow(context.db, userId, "text_tokens")).toBeNull();
    expect(await ledger.reservation(jobId)).toBeNull();
  });

  it("refuses a job of another user as not found", async () => {
    const ledger = context.ledger();
    const owner = await context.createUser();
    const stranger = await context.createUser();
    const jobId = await context.createJob(owner);

    await expect(ledger.reserve({ jobId, userId: stranger, textTokens: 1 })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  it("rejects negative or fractional amounts as invalid_request", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    await expect(ledger.reserve({ jobId, userId, textTokens: -1 })).rejects.toMatchObject({
      code: "invalid_request",
    });
    await expect(ledger.reserve({ jobId, userId, images: 1.5 })).rejects.toMatchObject({
      code: "invalid_request",
    });
  });
});

describe("settle and release", () => {
  it("charges the actual usage and gives back the unused part of the reservation", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 5_000, costMicroUsd: 900 });

    const outcome = await ledger.settle({ jobId, textTokens: 1_234, images: 0, costMicroUsd: 321 });

    expect(outcome).toBe("settled");
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 1_234, reserved: 0 });
    expect(await usageRow(context.db, userId, "cost_micro_usd")).toEqual({ used: 321, reserved: 0 });
    expect(await ledger.reservation(jobId)).toMatchObject({
      status: "settled",
      settledAt: context.clock.now,
    });
  });

  it("never charges more than the reservation, and reports what was used beyond it", async () => {
    const excesses: SettlementExcess[] = [];
    const ledger = context.ledger({ onSettlementExcess: (excess) => excesses.push(excess) });
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 1_000, costMicroUsd: 40 });

    expect(await ledger.settle({ jobId, textTokens: 50_010, images: 0, costMicroUsd: 900 })).toBe("settled");

    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 1_000, reserved: 0 });
    expect(await usageRow(context.db, userId, "cost_micro_usd")).toEqual({ used: 40, reserved: 0 });
    expect(excesses).toEqual([
      { jobId, userId, kind: "text_tokens", actual: 50_010, held: 1_000 },
      { jobId, userId, kind: "cost_micro_usd", actual: 900, held: 40 },
    ]);
  });

  it("records cost within the reservation even without a budget, reporting no excess", async () => {
    const excesses: SettlementExcess[] = [];
    const ledger = context.ledger({ onSettlementExcess: (excess) => excesses.push(excess) });
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 1_000, costMicroUsd: 60 });

    await ledger.settle({ jobId, textTokens: 900, images: 0, costMicroUsd: 50 });

    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 900, reserved: 0 });
    // Cost is recorded even without a budget, so the status can show it.
    expect(await usageRow(context.db, userId, "cost_micro_usd")).toEqual({ used: 50, reserved: 0 });
    expect(excesses).toEqual([]);
  });

  it("charges a job once however often it is settled", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 2_000 });

    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        ledger.settle({ jobId, textTokens: 1_500, images: 0, costMicroUsd: 0 }),
      ),
    );
    const later = await ledger.settle({ jobId, textTokens: 1_500, images: 0, costMicroUsd: 0 });

    expect(outcomes.filter((outcome) => outcome === "settled")).toHaveLength(1);
    expect(later).toBe("already_settled");
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 1_500, reserved: 0 });
    expect((await ledger.reserve({ jobId, userId, textTokens: 2_000 })).outcome).toBe("already_settled");
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 1_500, reserved: 0 });
  });

  it("gives everything back on release, once", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser("professional");
    const jobId = await context.createJob(userId, "image");
    await ledger.reserve({ jobId, userId, images: 4, costMicroUsd: 80_000 });
    expect(await usageRow(context.db, userId, "images")).toEqual({ used: 0, reserved: 4 });

    expect(await ledger.release(jobId)).toBe("released");
    expect(await ledger.release(jobId)).toBe("already_released");

    expect(await usageRow(context.db, userId, "images")).toEqual({ used: 0, reserved: 0 });
    expect(await usageRow(context.db, userId, "cost_micro_usd")).toEqual({ used: 0, reserved: 0 });
    expect(await ledger.settle({ jobId, textTokens: 0, images: 4, costMicroUsd: 1 })).toBe("released");
    expect(await usageRow(context.db, userId, "images")).toEqual({ used: 0, reserved: 0 });
  });

  it("leaves a settled reservation alone on release", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 100 });
    await ledger.settle({ jobId, textTokens: 80, images: 0, costMicroUsd: 0 });

    expect(await ledger.release(jobId)).toBe("settled");
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 80, reserved: 0 });
  });

  it("holds a released job's reservation again when it runs again", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 100 });
    await ledger.release(jobId);

    const again = await ledger.reserve({ jobId, userId, textTokens: 300 });

    expect(again.outcome).toBe("reserved");
    expect(await ledger.reservation(jobId)).toMatchObject({
      status: "reserved",
      textTokens: 300,
      releasedAt: null,
    });
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 300 });
  });

  it("reports no_reservation for a job that never reserved, charging nothing", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    expect(await ledger.settle({ jobId, textTokens: 10, images: 0, costMicroUsd: 10 })).toBe(
      "no_reservation",
    );
    expect(await ledger.release(jobId)).toBe("no_reservation");
    expect(await usageRow(context.db, userId, "text_tokens")).toBeNull();
  });

  it("keeps the reservation when the transaction that settled it rolls back", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 1_000 });

    const rolledBack = new Error("rolled back on purpose");
    await expect(
      context.db.$transaction(async (transaction) => {
        expect(await ledger.settle({ jobId, textTokens: 700, images: 0, costMicroUsd: 0 }, transaction)).toBe(
          "settled",
        );
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);

    expect(await ledger.reservation(jobId)).toMatchObject({ status: "reserved", settledAt: null });
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 1_000 });
  });

  it("settles in the statement that completes the job, once, and never for a stale delivery", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);
    const claimed = await context.claim(jobId);
    await ledger.reserve({ jobId, userId, textTokens: 2_000 });
    const completion = {
      jobId,
      attempt: claimed!.attempts,
      result: { text: "hi", finishReason: "stop", provider: "mock", model: "mock-1" },
      provider: "mock",
      model: "mock-1",
      usage: { inputTokens: 300, outputTokens: 200 },
      costMicroUsd: 42,
      charge: { textTokens: 500, images: 0, costMicroUsd: 42 },
    };

    // A stale delivery (an earlier attempt) neither completes nor settles.
    expect(await context.lifecycle.complete({ ...completion, attempt: claimed!.attempts - 1 })).toBe(false);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 2_000 });

    expect(await context.lifecycle.complete(completion)).toBe(true);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 500, reserved: 0 });
    expect(await ledger.reservation(jobId)).toMatchObject({ status: "settled" });

    // A second completion of the same job (a stalled duplicate) neither completes nor settles.
    expect(await context.lifecycle.complete(completion)).toBe(false);
    expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 500, reserved: 0 });
  });
});

describe("limits", () => {
  it("applies a plan change to new reservations", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser("basic");
    const first = await context.createJob(userId);
    const second = await context.createJob(userId);
    await ledger.reserve({ jobId: first, userId, textTokens: 90_000 });
    await expect(ledger.reserve({ jobId: second, userId, textTokens: 20_000 })).rejects.toBeInstanceOf(
      QuotaExceededError,
    );

    await context.db.user.update({ where: { id: userId }, data: { plan: "professional" } });

    expect((await ledger.reserve({ jobId: second, userId, textTokens: 20_000 })).outcome).toBe("reserved");
    expect((await ledger.status(userId)).kinds.textTokens).toEqual({
      used: 0,
      reserved: 110_000,
      limit: 500_000,
    });
  });

  it("lets a per-user override win over the plan, and falls back when it is cleared", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser("enterprise");

    expect(await ledger.setUserLimits(userId, { imageLimit: 3, textTokenLimit: 10 })).toEqual({
      textTokenLimit: 10,
      imageLimit: 3,
      monthlyBudgetMicroUsd: null,
    });
    const jobId = await context.createJob(userId, "image");
    await expect(ledger.reserve({ jobId, userId, images: 4 })).rejects.toMatchObject({
      details: { kind: "images", limit: 3 },
    });

    await ledger.setUserLimits(userId, { imageLimit: null });
    expect((await ledger.reserve({ jobId, userId, images: 4 })).outcome).toBe("reserved");
    const status = await ledger.status(userId);
    expect(status.kinds.images.limit).toBe(1_000);
    expect(status.kinds.textTokens.limit).toBe(10);
  });

  it("uses plan limits from the configuration", async () => {
    const ledger = context.ledger({ plans: { basic: { textTokens: 10, images: 1 } } });
    const userId = await context.createUser("basic");
    const jobId = await context.createJob(userId);

    await expect(ledger.reserve({ jobId, userId, textTokens: 11 })).rejects.toMatchObject({
      details: { limit: 10 },
    });
    expect(ledger.planLimits("professional").textTokens).toBe(500_000);
  });

  it("rejects invalid plan limits in the constructor", () => {
    expect(() => context.ledger({ plans: { basic: { textTokens: -1, images: 1 } } })).toThrow(/basic/);
  });

  it("reports a missing user as not found", async () => {
    const ledger = context.ledger();
    const missing = "00000000-0000-7000-8000-000000000000";
    await expect(ledger.status(missing)).rejects.toMatchObject({ code: "not_found" });
    await expect(ledger.setUserLimits(missing, { imageLimit: 1 })).rejects.toMatchObject({
      code: "not_found",
    });
  });
});

describe("the monthly budget", () => {
  it("applies the default plan's budget when nothing is configured", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    await expect(ledger.reserve({ jobId, userId, costMicroUsd: 20_000_001 })).rejects.toThrow(
      QuotaExceededError,
    );
    expect((await ledger.status(userId)).kinds.costMicroUsd.limit).toBe(20_000_000);
  });

  it("is unlimited when the plan's budget is configured away", async () => {
    const ledger = context.ledger({
      plans: { basic: { textTokens: 100_000, images: 50, monthlyBudgetMicroUsd: null } },
    });
    const userId = await context.createUser();
    const jobId = await context.createJob(userId);

    expect((await ledger.reserve({ jobId, userId, costMicroUsd: 10_000_000_000 })).outcome).toBe("reserved");
    expect((await ledger.status(userId)).kinds.costMicroUsd).toEqual({
      used: 0,
      reserved: 10_000_000_000,
      limit: null,
    });
  });

  it("refuses cost beyond the budget and admits it again once settlement frees the rest", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    await ledger.setUserLimits(userId, { monthlyBudgetMicroUsd: 1_000_000 });
    const [first, second] = [await context.createJob(userId), await context.createJob(userId)];

    await ledger.reserve({ jobId: first, userId, costMicroUsd: 600_000 });
    const error = await ledger
      .reserve({ jobId: second, userId, costMicroUsd: 600_000 })
      .catch((caught) => caught);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.message).toContain("monthly budget exceeded: $0.00 used + $0.60 reserved of $1.00");

    await ledger.settle({ jobId: first, textTokens: 0, images: 0, costMicroUsd: 300_000 });
    expect((await ledger.reserve({ jobId: second, userId, costMicroUsd: 600_000 })).outcome).toBe("reserved");
    expect((await ledger.status(userId)).kinds.costMicroUsd).toEqual({
      used: 300_000,
      reserved: 600_000,
      limit: 1_000_000,
    });
  });

  it("can come from the plan", async () => {
    const ledger = context.ledger({
      plans: { basic: { textTokens: 100_000, images: 50, monthlyBudgetMicroUsd: 5_000 } },
    });
    const userId = await context.createUser("basic");
    const jobId = await context.createJob(userId);

    await expect(ledger.check({ userId, costMicroUsd: 5_001 })).rejects.toMatchObject({
      details: { kind: "cost_micro_usd", limit: 5_000 },
    });
    expect((await ledger.reserve({ jobId, userId, costMicroUsd: 5_000 })).outcome).toBe("reserved");
  });
});

describe("check", () => {
  it("refuses at submission what cannot fit beside used and reserved, without holding anything", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    const first = await context.createJob(userId);
    const second = await context.createJob(userId);
    await ledger.reserve({ jobId: first, userId, textTokens: 60_000 });
    await ledger.settle({ jobId: first, textTokens: 50_000, images: 0, costMicroUsd: 0 });
    await ledger.reserve({ jobId: second, userId, textTokens: 30_000 });

    await expect(ledger.check({ userId, textTokens: 20_000 })).resolves.toBeUndefined();
    await expect(ledger.check({ userId, textTokens: 20_001 })).rejects.toMatchObject({
      code: "quota_exceeded",
      details: { kind: "text_tokens", used: 50_000, reserved: 30_000, limit: 100_000, requested: 20_001 },
    });
    await expect(ledger.check({ userId, images: 51 })).rejects.toMatchObject({ details: { kind: "images" } });
    expect((await ledger.status(userId)).kinds.textTokens).toEqual({
      used: 50_000,
      reserved: 30_000,
      limit: 100_000,
    });
  });
});

describe("month rollover", () => {
  it("starts a new month from zero and reports when it resets", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    context.clock.now = new Date("2026-11-30T23:59:59.999Z");
    const november = await context.createJob(userId);
    await ledger.reserve({ jobId: november, userId, textTokens: 100_000 });
    await ledger.settle({ jobId: november, textTokens: 100_000, images: 0, costMicroUsd: 0 });
    expect((await ledger.status(userId)).resetsAt).toEqual(new Date("2026-12-01T00:00:00.000Z"));
    await expect(ledger.check({ userId, textTokens: 1 })).rejects.toMatchObject({
      details: { resetsAt: "2026-12-01T00:00:00.000Z" },
    });

    context.clock.now = new Date("2026-12-01T00:00:00.000Z");
    const december = await context.createJob(userId);
    const result = await ledger.reserve({ jobId: december, userId, textTokens: 100_000 });

    expect(result.reservation.periodStart).toEqual(new Date("2026-12-01T00:00:00.000Z"));
    const status = await ledger.status(userId);
    expect(status).toMatchObject({
      periodStart: new Date("2026-12-01T00:00:00.000Z"),
      resetsAt: new Date("2027-01-01T00:00:00.000Z"),
      kinds: { textTokens: { used: 0, reserved: 100_000, limit: 100_000 } },
    });
    expect(await usageRow(context.db, userId, "text_tokens", "2026-11-01")).toEqual({
      used: 100_000,
      reserved: 0,
    });
  });

  it("settles a reservation in the month it was made", async () => {
    const ledger = context.ledger();
    const userId = await context.createUser();
    context.clock.now = new Date("2026-11-30T23:59:00.000Z");
    const jobId = await context.createJob(userId);
    await ledger.reserve({ jobId, userId, textTokens: 1_000 });

    context.clock.now = new Date("2026-12-01T00:01:00.000Z");
    await ledger.settle({ jobId, textTokens: 800, images: 0, costMicroUsd: 0 });

    expect(await usageRow(context.db, userId, "text_tokens", "2026-11-01")).toEqual({
      used: 800,
      reserved: 0,
    });
    expect(await usageRow(context.db, userId, "text_tokens", "2026-12-01")).toBeNull();
  });
});
