import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
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

const MINUTE = 60_000;

/** Completes a claimed job the way a worker does, but without settling: it "died" right after. */
async function completeWithoutSettling(jobId: string, usage: { inputTokens: number; outputTokens: number }) {
  const claimed = await context.claim(jobId);
  const completed = await context.lifecycle.complete({
    jobId,
    attempt: claimed!.attempts,
    result: { text: "done", finishReason: "stop", provider: "mock", model: "mock-1" },
    provider: "mock",
    model: "mock-1",
    usage,
    costMicroUsd: 77,
  });
  expect(completed).toBe(true);
}

it("settles a completed job from its usage record, releases failed and canceled ones, and keeps the holds of queued jobs however old", async () => {
  const ledger = context.ledger();
  const userId = await context.createUser();
  const [completed, failed, canceled, oldQueued, freshQueued, active] = await Promise.all(
    Array.from({ length: 6 }, () => context.createJob(userId)),
  );
  for (const jobId of [completed!, failed!, canceled!, oldQueued!, active!]) {
    await ledger.reserve({ jobId, userId, textTokens: 1_000, costMicroUsd: 100 });
  }
  context.clock.now = new Date(context.clock.now.getTime() + 30 * MINUTE);
  await ledger.reserve({ jobId: freshQueued!, userId, textTokens: 1_000, costMicroUsd: 100 });

  await completeWithoutSettling(completed!, { inputTokens: 120, outputTokens: 80 });
  // Finished by a process that died before releasing their holds (the lifecycle releases in
  // the finishing statement; the reclaimer is the safety net for anything else).
  await context.db.job.update({ where: { id: failed! }, data: { status: "failed", finishedAt: new Date() } });
  await context.db.job.update({
    where: { id: canceled! },
    data: { status: "canceled", finishedAt: new Date() },
  });
  await context.claim(active!);
  expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 0, reserved: 6_000 });

  const result = await ledger.reclaim({ olderThanMs: 10 * MINUTE });

  expect(result).toEqual({ settled: 1, released: 2 });
  expect((await ledger.reservation(completed!))?.status).toBe("settled");
  expect((await ledger.reservation(failed!))?.status).toBe("released");
  expect((await ledger.reservation(canceled!))?.status).toBe("released");
  // A queued job's hold is what its 202 promised (held at admission), however long it waits;
  // a running one is its worker's.
  expect((await ledger.reservation(oldQueued!))?.status).toBe("reserved");
  expect((await ledger.reservation(freshQueued!))?.status).toBe("reserved");
  expect((await ledger.reservation(active!))?.status).toBe("reserved");
  expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 200, reserved: 3_000 });
  expect(await usageRow(context.db, userId, "cost_micro_usd")).toEqual({ used: 77, reserved: 300 });

  expect(await ledger.reclaim({ olderThanMs: 10 * MINUTE })).toEqual({ settled: 0, released: 0 });
});

it("charges a recovered job once when a worker died between reserve and settle and the job ran again", async () => {
  const ledger = context.ledger();
  const userId = await context.createUser();
  const jobId = await context.createJob(userId);

  // First delivery: claims, reserves, dies. BullMQ re-delivers; the second delivery
  // finds the reservation held, runs the job and settles in the completing transaction.
  await context.claim(jobId);
  await ledger.reserve({ jobId, userId, textTokens: 1_000 });
  const claimed = await context.claim(jobId);
  expect((await ledger.reserve({ jobId, userId, textTokens: 1_000 })).outcome).toBe("already_reserved");
  await context.lifecycle.complete({
    jobId,
    attempt: claimed!.attempts,
    result: { text: "done", finishReason: "stop", provider: "mock", model: "mock-1" },
    provider: "mock",
    model: "mock-1",
    usage: { inputTokens: 100, outputTokens: 50 },
    costMicroUsd: 10,
    charge: { textTokens: 150, images: 0, costMicroUsd: 10 },
  });

  expect(await ledger.reclaim({ olderThanMs: 0 })).toEqual({ settled: 0, released: 0 });
  expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 150, reserved: 0 });
});

it("settles each reservation once when several processes reclaim at the same time", async () => {
  const ledger = context.ledger();
  const userId = await context.createUser();
  const jobIds = await Promise.all(Array.from({ length: 20 }, () => context.createJob(userId)));
  for (const jobId of jobIds) await ledger.reserve({ jobId, userId, textTokens: 500 });
  for (const jobId of jobIds.slice(0, 10))
    await completeWithoutSettling(jobId, { inputTokens: 100, outputTokens: 100 });
  // Failed by a process that died before releasing their holds.
  await context.db.job.updateMany({ where: { id: { in: jobIds.slice(10) } }, data: { status: "failed" } });

  const results = await Promise.all(
    Array.from({ length: 4 }, () => context.ledger().reclaim({ olderThanMs: 10 * MINUTE })),
  );

  const totals = results.reduce((sum, result) => ({
    settled: sum.settled + result.settled,
    released: sum.released + result.released,
  }));
  expect(totals).toEqual({ settled: 10, released: 10 });
  expect(await usageRow(context.db, userId, "text_tokens")).toEqual({ used: 2_000, reserved: 0 });
});
