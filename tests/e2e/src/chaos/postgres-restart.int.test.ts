import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "../harness.ts";
import {
  CHAOS_FULL,
  chaosScale,
  countByStatus,
  type PrivatePostgres,
  startPrivatePostgres,
} from "./chaos-support.ts";
import { maxLatency, SubmissionStream } from "./submission-stream.ts";

/** Accepted submissions before the outage, refused ones during it, and accepted ones after. */
const BEFORE = chaosScale(40, 1_000);
const DURING = chaosScale(20, 300);
const AFTER = chaosScale(40, 1_000);
/** The outage lasts at least this long (load, not synchronization). */
const OUTAGE_MS = chaosScale(3_000, 20_000);
/** No request may take longer than this, outage or not: the API answers, it does not hang. */
const MAX_LATENCY_MS = 2_000;

describe("chaos: PostgreSQL restarted in the middle of a run", () => {
  let postgres: PrivatePostgres | undefined;
  let harness: Harness | undefined;
  let stream: SubmissionStream | undefined;

  beforeAll(async () => {
    // A private cluster: the machine's shared PostgreSQL is never restarted.
    postgres = await startPrivatePostgres();
    harness = await new Harness({ databaseUrl: postgres.url }).start({ startWorker: false });
  });

  afterAll(async () => {
    await stream?.stop().catch(() => {});
    await postgres?.start().catch(() => {});
    await harness?.close();
    await postgres?.destroy();
  });

  it("answers 503 at once while PostgreSQL is down, and loses and double-charges nothing accepted", {
    timeout: chaosScale(150_000, 900_000),
  }, async () => {
    const h = harness!;
    const database = postgres!;
    const { apiKey, userId } = await h.createUser();
    await h.quota.setUserLimits(userId, { textTokenLimit: 1_000_000_000 });
    await Promise.all([h.spawnWorker(), h.spawnWorker()]);
    stream = new SubmissionStream(h, apiKey);
    const started = Date.now();
    stream.start();

    await waitUntil(() => stream!.count(202) >= BEFORE, 60_000 + BEFORE * 100);
    const stoppingAt = Date.now();
    await database.stop();
    const stoppedAt = Date.now();
    await waitUntil(
      () => stream!.count(503, stoppedAt) >= DURING && Date.now() - stoppedAt >= OUTAGE_MS,
      60_000 + OUTAGE_MS,
    );
    const startingAt = Date.now();
    await database.start();
    await waitUntil(() => stream!.count(202, startingAt) >= AFTER, 60_000 + AFTER * 100);
    await stream.stop();

    // While PostgreSQL was down, every submission was refused quickly with the standard error.
    const duringOutage = stream.between(stoppedAt, startingAt);
    expect(duringOutage.length).toBeGreaterThanOrEqual(DURING);
    for (const submission of duringOutage) {
      expect(submission).toMatchObject({
        statusCode: 503,
        errorCode: "service_unavailable",
        retryAfter: "5",
      });
    }
    const slow = stream
      .between(stoppingAt)
      .filter((submission) => submission.latencyMs >= MAX_LATENCY_MS)
      .map((submission) => ({ ...submission, sinceStopMs: submission.startedAt - stoppingAt }));
    expect(slow).toEqual([]);
    const unexpected = stream.submissions.filter((submission) => ![202, 503].includes(submission.statusCode));
    expect(unexpected).toEqual([]);

    // Every 202 is a job that completes exactly once; a 503 left nothing behind.
    const accepted = stream.acceptedIds();
    await waitUntil(
      async () => (await h.db.job.count({ where: { status: "completed" } })) === accepted.length,
      chaosScale(120_000, 600_000),
    ).catch(async (error: unknown) => {
      throw new Error(
        `${(error as Error).message}; jobs by status: ${JSON.stringify(await countByStatus(h))}`,
      );
    });
    const rows = await h.db.job.findMany({ select: { id: true } });
    expect(new Set(rows.map((row) => row.id))).toEqual(new Set(accepted));
    const usage = await h.db.usageRecord.findMany({ where: { userId } });
    expect(usage).toHaveLength(accepted.length);
    const counters = await h.db.quotaUsage.findMany({ where: { userId, kind: "text_tokens" } });
    expect(counters.map((row) => Number(row.used))).toEqual([
      usage.reduce((sum, record) => sum + record.inputTokens + record.outputTokens, 0),
    ]);
    expect(counters.map((row) => row.reserved)).toEqual([0n]);
    expect(await h.db.quotaReservation.count({ where: { status: { not: "settled" } } })).toBe(0);

    const attempts = await h.db.job.aggregate({ _sum: { attempts: true }, _max: { attempts: true } });
    console.info(
      `[chaos ${CHAOS_FULL ? "full" : "shortened"}] postgres restart: ${accepted.length} accepted ` +
        `(${stream.count(202, startingAt)} after the restart), ${stream.count(503)} refused with 503, ` +
        `outage ${startingAt - stoppedAt} ms (stop took ${stoppedAt - stoppingAt} ms), ` +
        `max latency from the stop on ${maxLatency(stream.between(stoppingAt))} ms, ` +
        `${attempts._sum.attempts} attempts (max ${attempts._max.attempts}), ` +
        `all completed ${Date.now() - started} ms after the start`,
    );
  });
});
