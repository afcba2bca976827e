import { afterAll, beforeAll, expect, it } from "vitest";
import { createLedgerTestContext, type LedgerTestContext } from "./test-fixtures.ts";

let context: LedgerTestContext;

beforeAll(async () => {
  context = await createLedgerTestContext();
});

afterAll(async () => {
  await context?.close();
});

interface FinishedJob {
  type: "text" | "image";
  provider: string;
  model: string;
  at: string;
  inputTokens: number;
  cachedInputTokens?: number;
  outputTokens: number;
  images?: number;
  costMicroUsd: number;
}

/** Runs a job to completion through the repository and dates its usage record. */
async function finish(userId: string, job: FinishedJob): Promise<void> {
  const jobId = await context.createJob(userId, job.type);
  const claimed = await context.claim(jobId);
  await context.lifecycle.complete({
    jobId,
    attempt: claimed!.attempts,
    result: {},
    provider: job.provider,
    model: job.model,
    usage: {
      inputTokens: job.inputTokens,
      outputTokens: job.outputTokens,
      ...(job.cachedInputTokens === undefined ? {} : { cachedInputTokens: job.cachedInputTokens }),
      ...(job.images === undefined ? {} : { images: job.images }),
    },
    costMicroUsd: job.costMicroUsd,
  });
  await context.db.usageRecord.update({ where: { jobId }, data: { createdAt: new Date(job.at) } });
}

const JOBS: FinishedJob[] = [
  {
    type: "text",
    provider: "openai",
    model: "gpt-4o-mini",
    at: "2026-11-01T08:00:00Z",
    inputTokens: 100,
    cachedInputTokens: 40,
    outputTokens: 50,
    costMicroUsd: 1_250,
  },
  {
    type: "text",
    provider: "openai",
    model: "gpt-4o-mini",
    at: "2026-11-01T23:59:59Z",
    inputTokens: 200,
    outputTokens: 10,
    costMicroUsd: 2_000,
  },
  {
    type: "text",
    provider: "anthropic",
    model: "claude-haiku",
    at: "2026-11-03T00:00:00Z",
    inputTokens: 300,
    outputTokens: 30,
    costMicroUsd: 4_321,
  },
  {
    type: "image",
    provider: "openai",
    model: "gpt-image-1",
    at: "2026-11-03T12:00:00Z",
    inputTokens: 20,
    outputTokens: 0,
    images: 2,
    costMicroUsd: 80_000,
  },
  {
    type: "image",
    provider: "google",
    model: "gemini-image",
    at: "2026-11-09T06:00:00Z",
    inputTokens: 10,
    outputTokens: 0,
    images: 1,
    costMicroUsd: 39_000,
  },
  // Outside the report's range, inside the month: counts for the projection only.
  {
    type: "text",
    provider: "openai",
    model: "gpt-4o-mini",
    at: "2026-11-10T06:00:00Z",
    inputTokens: 1,
    outputTokens: 1,
    costMicroUsd: 429,
  },
  // Last month: in neither.
  {
    type: "text",
    provider: "openai",
    model: "gpt-4o-mini",
    at: "2026-10-31T23:00:00Z",
    inputTokens: 9,
    outputTokens: 9,
    costMicroUsd: 999_999,
  },
];

it("totals equal the sum of the per-job costs and usage, in every grouping", async () => {
  const userId = await context.createUser();
  const otherUser = await context.createUser();
  for (const job of JOBS) await finish(userId, job);
  await finish(otherUser, JOBS[0]!);
  context.clock.now = new Date("2026-11-10T18:00:00Z");
  const ledger = context.ledger();
  const range = { userId, from: new Date("2026-11-01T00:00:00Z"), to: new Date("2026-11-10T00:00:00Z") };
  const inRange = JOBS.slice(0, 5);

  const byDay = await ledger.usageReport({ ...range, groupBy: "day" });

  expect(byDay.totals).toEqual({
    jobs: 5,
    inputTokens: inRange.reduce((sum, job) => sum + job.inputTokens, 0),
    cachedInputTokens: 40,
    outputTokens: inRange.reduce((sum, job) => sum + job.outputTokens, 0),
    reasoningTokens: 0,
    images: 3,
    costMicroUsd: inRange.reduce((sum, job) => sum + job.costMicroUsd, 0),
    // Every job ran online: what it would have cost online is what it cost, nothing saved.
    onlineCostMicroUsd: inRange.reduce((sum, job) => sum + job.costMicroUsd, 0),
    savingsMicroUsd: 0,
  });
  expect(byDay.groups.map((group) => [group.key, group.jobs, group.costMicroUsd])).toEqual([
    ["2026-11-01", 2, 3_250],
    ["2026-11-03", 2, 84_321],
    ["2026-11-09", 1, 39_000],
  ]);

  const byProvider = await ledger.usageReport({ ...range, groupBy: "provider" });
  expect(byProvider.groups.map((group) => [group.key, group.jobs, group.costMicroUsd])).toEqual([
    ["anthropic", 1, 4_321],
    ["google", 1, 39_000],
    ["openai", 3, 83_250],
  ]);

  const byModel = await ledger.usageReport({ ...range, groupBy: "model" });
  expect(byModel.groups.map((group) => [group.key, group.jobs, group.images])).toEqual([
    ["claude-haiku", 1, 0],
    ["gemini-image", 1, 1],
    ["gpt-4o-mini", 2, 0],
    ["gpt-image-1", 1, 2],
  ]);

  const byType = await ledger.usageReport({ ...range, groupBy: "type" });
  expect(byType.groups.map((group) => [group.key, group.jobs, group.costMicroUsd, group.images])).toEqual([
    ["image", 2, 119_000, 3],
    ["text", 3, 7_571, 0],
  ]);

  for (const report of [byDay, byProvider, byModel, byType]) {
    expect(report.totals).toEqual(byDay.totals);
    expect(report.groups.reduce((sum, group) => sum + group.costMicroUsd, 0)).toBe(
      report.totals.costMicroUsd,
    );
  }

  // November so far (1st to 10th, today included): 126,571 + 429 = 127,000 over 10 days, × 30.
  expect(byDay.projection).toEqual({
    periodStart: new Date("2026-11-01T00:00:00Z"),
    resetsAt: new Date("2026-12-01T00:00:00Z"),
    costSoFarMicroUsd: 127_000,
    daysElapsed: 10,
    daysInMonth: 30,
    projectedMicroUsd: 381_000,
  });
});

it("reports empty totals for a user without usage", async () => {
  const userId = await context.createUser();
  const report = await context.ledger().usageReport({
    userId,
    from: new Date("2026-11-01T00:00:00Z"),
    to: new Date("2026-12-01T00:00:00Z"),
    groupBy: "provider",
  });
  expect(report.totals.jobs).toBe(0);
  expect(report.totals.costMicroUsd).toBe(0);
  expect(report.groups).toEqual([]);
  expect(report.projection.projectedMicroUsd).toBe(0);
});

it("refuses a range that ends before it starts", async () => {
  const userId = await context.createUser();
  await expect(
    context
      .ledger()
      .usageReport({ userId, from: new Date("2026-11-02"), to: new Date("2026-11-01"), groupBy: "day" }),
  ).rejects.toMatchObject({ code: "invalid_request" });
});
