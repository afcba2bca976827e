// Quota held at admission (issue 13, item 3): JobAdmission takes the hold QuotaLedger.reserve
// would, in the statement that inserts the job; the ledger then settles, releases and
// reclaims it like any other reservation.
import { randomBytes } from "node:crypto";
import { IdempotencyConflictError } from "@genq/core";
import {
  type AdmissionHold,
  type AdmissionOutcome,
  createPrismaClient,
  type Database,
  JobAdmission,
  type JobAdmissionRequest,
} from "@genq/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QuotaLedger } from "./quota-ledger.ts";
import { createLedgerTestContext, type LedgerTestContext, usageRow } from "./test-fixtures.ts";

let context: LedgerTestContext;
let ledger: QuotaLedger;
let admission: JobAdmission;
/** A second client: concurrent submissions from two API processes. */
let other: Database;
let otherAdmission: JobAdmission;

beforeAll(async () => {
  context = await createLedgerTestContext({ maxConnections: 20 });
  ledger = context.ledger();
  admission = new JobAdmission({ db: context.db });
  other = createPrismaClient({ connectionString: context.database.url, maxConnections: 20 });
  otherAdmission = new JobAdmission({ db: other, preparedStatements: false });
});

afterAll(async () => {
  await other?.$disconnect();
  await context?.close();
});

const PERIOD = "2026-11-01";

function hold(amounts: Partial<AdmissionHold> = {}): AdmissionHold {
  const terms = ledger.holdTerms();
  return {
    periodStart: terms.period.start,
    planLimits: terms.planLimits,
    textTokens: 0,
    images: 0,
    costMicroUsd: 0,
    ...amounts,
  };
}

function textJob(userId: string, overrides: Partial<JobAdmissionRequest> = {}): JobAdmissionRequest {
  return {
    userId,
    type: "text",
    priority: 5,
    input: { prompt: `hello ${randomBytes(4).toString("hex")}` },
    reservedOutputTokens: 100,
    hold: hold({ textTokens: 1_000 }),
    ...overrides,
  };
}

async function reservations(userId: string) {
  return context.db.quotaReservation.findMany({ where: { userId }, orderBy: { createdAt: "asc" } });
}

describe("JobAdmission", () => {
  it("admits exactly the 40 concurrent submissions' share that fits, holds each, and refuses the rest", async () => {
    const userId = await context.createUser("basic");
    const limit = 15 * 1_000 + 999; // room for 15 jobs of 1,000, not 16
    await ledger.setUserLimits(userId, { textTokenLimit: limit });

    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        (index % 2 === 0 ? admission : otherAdmission).admit(textJob(userId)),
      ),
    );
    const created = outcomes.filter((outcome) => outcome.outcome === "created");
    const refused = outcomes.filter((outcome) => outcome.outcome === "quota_exceeded");
    expect(created).toHaveLength(15);
    expect(refused).toHaveLength(25);
    for (const outcome of refused) {
      expect(outcome).toMatchObject({ kind: "text_tokens", limit, requested: 1_000 });
    }
    // Every admitted job holds its plan; nothing else is held, no refused job was stored.
    const held = await reservations(userId);
    expect(held).toHaveLength(15);
    expect(new Set(held.map((row) => row.jobId))).toEqual(
      new Set(created.map((outcome) => (outcome.outcome === "created" ? outcome.job.id : ""))),
    );
    for (const row of held)
      expect({ status: row.status, tokens: Number(row.textTokens) }).toEqual({
        status: "reserved",
        tokens: 1_000,
      });
    expect(await context.db.job.count({ where: { userId } })).toBe(15);
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 0, reserved: 15_000 });
  });

  it("stores the output cap the hold covers on the job", async () => {
    const userId = await context.createUser("basic");
    const outcome = await admission.admit(textJob(userId, { reservedOutputTokens: 321 }));
    expect(outcome.outcome).toBe("created");
    const job = (outcome as Extract<AdmissionOutcome, { outcome: "created" }>).job;
    expect(job.reservedOutputTokens).toBe(321);
    expect((await context.db.job.findUniqueOrThrow({ where: { id: job.id } })).reservedOutputTokens).toBe(
      321,
    );
    // The row the statement returns is the row Prisma reads.
    expect(await context.db.job.findUniqueOrThrow({ where: { id: job.id } })).toEqual(job);
  });

  it("holds every kind or none: a job over the cost budget leaves the tokens it would have held", async () => {
    const userId = await context.createUser("basic");
    await ledger.setUserLimits(userId, { monthlyBudgetMicroUsd: 5_000 });
    const fits = await admission.admit(
      textJob(userId, { hold: hold({ textTokens: 1_000, costMicroUsd: 4_000 }) }),
    );
    expect(fits.outcome).toBe("created");
    const refused = await admission.admit(
      textJob(userId, { hold: hold({ textTokens: 1_000, costMicroUsd: 4_000 }) }),
    );
    expect(refused).toMatchObject({
      outcome: "quota_exceeded",
      kind: "cost_micro_usd",
      used: 0,
      reserved: 4_000,
      limit: 5_000,
      requested: 4_000,
    });
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 0, reserved: 1_000 });
    expect(await usageRow(context.db, userId, "cost_micro_usd", PERIOD)).toEqual({
      used: 0,
      reserved: 4_000,
    });
    expect(await context.db.job.count({ where: { userId } })).toBe(1);
  });

  it("refuses a job larger than the whole limit when the user holds nothing yet", async () => {
    const userId = await context.createUser("basic");
    await ledger.setUserLimits(userId, { imageLimit: 2 });
    const outcome = await admission.admit({
      ...textJob(userId),
      type: "image",
      reservedOutputTokens: null,
      hold: hold({ images: 3 }),
    });
    expect(outcome).toMatchObject({
      outcome: "quota_exceeded",
      kind: "images",
      used: 0,
      reserved: 0,
      limit: 2,
    });
    expect(await usageRow(context.db, userId, "images", PERIOD)).toBeNull();
  });

  it("answers concurrent replays of one idempotency key with one job and one hold, on a quota with room for one", async () => {
    const userId = await context.createUser("basic");
    // Room for one: the replays waiting for its lock must not be refused as over quota.
    await ledger.setUserLimits(userId, { textTokenLimit: 1_000 });
    const request = textJob(userId, { idempotencyKey: "same", requestHash: "hash-a" });
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? admission : otherAdmission).admit(request)),
    );
    expect(outcomes.filter((outcome) => outcome.outcome === "created")).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome.outcome === "repeated")).toHaveLength(19);
    const ids = new Set(
      outcomes.map((outcome) => (outcome.outcome === "quota_exceeded" ? "" : outcome.job.id)),
    );
    expect(ids.size).toBe(1);
    expect(await reservations(userId)).toHaveLength(1);
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 0, reserved: 1_000 });
    await expect(admission.admit({ ...request, requestHash: "hash-b" })).rejects.toBeInstanceOf(
      IdempotencyConflictError,
    );
  });

  it("answers a replay before the quota: a full quota does not refuse it", async () => {
    const userId = await context.createUser("basic");
    await ledger.setUserLimits(userId, { textTokenLimit: 1_000 });
    const request = textJob(userId, { idempotencyKey: "replayed", requestHash: "hash" });
    const first = await admission.admit(request);
    expect(first.outcome).toBe("created");
    const replay = await admission.admit(request);
    expect(replay.outcome).toBe("repeated");
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 0, reserved: 1_000 });
  });

  it("holds nothing for a user whose own keys cover every candidate provider, and holds when one is missing", async () => {
    const userId = await context.createUser("basic");
    await ledger.setUserLimits(userId, { textTokenLimit: 1_000 });
    for (const provider of ["openai", "anthropic"]) {
      await context.db.userProviderKey.create({
        data: { id: crypto.randomUUID(), userId, provider, keyId: "k1", ciphertext: "x", hint: "sk-…" },
      });
    }
    // Twice the limit, yet nothing is held: the job cannot touch a system key.
    for (let index = 0; index < 2; index += 1) {
      const outcome = await admission.admit(
        textJob(userId, { hold: hold({ textTokens: 1_000, userKeyProviders: ["openai", "anthropic"] }) }),
      );
      expect(outcome.outcome).toBe("created");
    }
    expect(await reservations(userId)).toHaveLength(0);
    const partial = await admission.admit(
      textJob(userId, { hold: hold({ textTokens: 1_000, userKeyProviders: ["openai", "gemini"] }) }),
    );
    expect(partial.outcome).toBe("created");
    expect(await reservations(userId)).toHaveLength(1);
  });

  it("holds nothing without a quota (no hold given)", async () => {
    const userId = await context.createUser("basic");
    expect((await admission.admit(textJob(userId, { hold: undefined }))).outcome).toBe("created");
    expect(await reservations(userId)).toHaveLength(0);
  });
});

describe("a hold taken at admission, in the ledger", () => {
  it("is kept by the worker's reserve, charged once by settle, and given back by release", async () => {
    const userId = await context.createUser("basic");
    const admitted = await admission.admit(
      textJob(userId, { hold: hold({ textTokens: 1_000, costMicroUsd: 50 }) }),
    );
    if (admitted.outcome !== "created") throw new Error("not admitted");
    const jobId = admitted.job.id;
    const reserved = await ledger.reserve({ jobId, userId, textTokens: 1_000, costMicroUsd: 50 });
    expect(reserved.outcome).toBe("already_reserved");
    expect(reserved.reservation).toMatchObject({
      textTokens: 1_000,
      images: 0,
      costMicroUsd: 50,
      status: "reserved",
    });
    expect(await ledger.settle({ jobId, textTokens: 600, images: 0, costMicroUsd: 30 })).toBe("settled");
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 600, reserved: 0 });
    expect(await usageRow(context.db, userId, "cost_micro_usd", PERIOD)).toEqual({ used: 30, reserved: 0 });

    const second = await admission.admit(textJob(userId));
    if (second.outcome !== "created") throw new Error("not admitted");
    expect(await ledger.release(second.job.id)).toBe("released");
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 600, reserved: 0 });
  });

  it("keeps used + reserved within the limit when admissions race the worker's reservations", async () => {
    const userId = await context.createUser("basic");
    await ledger.setUserLimits(userId, { textTokenLimit: 20_000 });
    // Jobs admitted without a hold (no quota at the time), reserved by workers meanwhile.
    const unheld: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      const outcome = await admission.admit(textJob(userId, { hold: undefined }));
      if (outcome.outcome === "created") unheld.push(outcome.job.id);
    }
    const results = await Promise.allSettled([
      ...unheld.map((jobId) => ledger.reserve({ jobId, userId, textTokens: 1_000 })),
      ...Array.from({ length: 20 }, () => otherAdmission.admit(textJob(userId))),
    ]);
    const admitted = results.filter(
      (result) =>
        result.status === "fulfilled" && "outcome" in result.value && result.value.outcome === "created",
    ).length;
    const reservedByWorkers = results.filter(
      (result) =>
        result.status === "fulfilled" && "outcome" in result.value && result.value.outcome === "reserved",
    ).length;
    expect(admitted + reservedByWorkers).toBe(20);
    expect(await usageRow(context.db, userId, "text_tokens", PERIOD)).toEqual({ used: 0, reserved: 20_000 });
  });
});
