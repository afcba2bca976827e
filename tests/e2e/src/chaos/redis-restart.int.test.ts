import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, startPrivateRedis, waitUntil } from "../harness.ts";
import { CHAOS_FULL, chaosScale, countByStatus } from "./chaos-support.ts";
import { maxLatency, SubmissionStream } from "./submission-stream.ts";

/** Accepted submissions before the outage, refused ones during it, and accepted ones after. */
const BEFORE = chaosScale(40, 1_000);
const DURING = chaosScale(20, 300);
const AFTER = chaosScale(40, 1_000);
/** The outage lasts at least this long (load, not synchronization). */
const OUTAGE_MS = chaosScale(3_000, 20_000);
/** No request may take longer than this, outage or not: the API answers, it does not hang. */
const MAX_LATENCY_MS = 2_000;

describe("chaos: Redis restarted without persistence in the middle of a run", () => {
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  let harness: Harness | undefined;
  let stream: SubmissionStream | undefined;

  beforeAll(async () => {
    privateRedis = await startPrivateRedis();
    harness = await new Harness({ redisUrl: privateRedis.url }).start({ startWorker: false });
  });

  afterAll(async () => {
    await stream?.stop().catch(() => {});
    await harness?.close();
    await privateRedis?.stop();
  });

  it("answers 503 at once while Redis is down and completes every accepted job once it is back", {
    timeout: chaosScale(150_000, 900_000),
  }, async () => {
    const h = harness!;
    const redis = privateRedis!;
    const { apiKey } = await h.createUser();
    await Promise.all([h.spawnWorker(), h.spawnWorker()]);
    stream = new SubmissionStream(h, apiKey);
    const started = Date.now();
    stream.start();

    await waitUntil(() => stream!.count(202) >= BEFORE, 60_000 + BEFORE * 100);
    const killingAt = Date.now();
    await redis.kill();
    const killedAt = Date.now();
    await waitUntil(
      () => stream!.count(503, killedAt) >= DURING && Date.now() - killedAt >= OUTAGE_MS,
      60_000 + OUTAGE_MS,
    );
    const restartingAt = Date.now();
    await redis.restart();
    await waitUntil(() => stream!.count(202, restartingAt) >= AFTER, 60_000 + AFTER * 100);
    await stream.stop();

    // While Redis was down, every submission was refused quickly with the standard error.
    const duringOutage = stream.between(killedAt, restartingAt);
    expect(duringOutage.length).toBeGreaterThanOrEqual(DURING);
    for (const submission of duringOutage) {
      expect(submission).toMatchObject({
        statusCode: 503,
        errorCode: "service_unavailable",
        retryAfter: "5",
      });
    }
    // ... and no request hung: not those cut off by the kill, not those during the restart.
    const slow = stream
      .between(killingAt)
      .filter((submission) => submission.latencyMs >= MAX_LATENCY_MS)
      .map((submission) => ({
        ...submission,
        sinceKillMs: submission.startedAt - killedAt,
        sinceRestartMs: submission.startedAt - restartingAt,
      }));
    expect(slow).toEqual([]);
    for (const submission of stream.submissions) expect([202, 503]).toContain(submission.statusCode);

    // Every 202 is a job, and it completes (the reconciler re-enqueues what Redis lost);
    // a 503 left nothing behind.
    const accepted = stream.acceptedIds();
    expect(await h.db.job.count()).toBe(accepted.length);
    await waitUntil(
      async () => (await h.db.job.count({ where: { status: "completed" } })) === accepted.length,
      chaosScale(90_000, 600_000),
    ).catch(async (error: unknown) => {
      throw new Error(
        `${(error as Error).message}; jobs by status: ${JSON.stringify(await countByStatus(h))}`,
      );
    });
    const rows = await h.db.job.findMany({ select: { id: true } });
    expect(new Set(rows.map((row) => row.id))).toEqual(new Set(accepted));
    expect(await h.db.usageRecord.count()).toBe(accepted.length);
    expect(await h.db.quotaReservation.count({ where: { status: { not: "settled" } } })).toBe(0);

    const before = stream.between(0, killedAt);
    console.info(
      `[chaos ${CHAOS_FULL ? "full" : "shortened"}] redis restart: ${accepted.length} accepted ` +
        `(${stream.count(202, restartingAt)} after the restart), ${stream.count(503)} refused with 503, ` +
        `outage ${restartingAt - killedAt} ms, max latency during the outage ${maxLatency(duringOutage)} ms, ` +
        `overall ${maxLatency(stream.submissions)} ms (before: ${maxLatency(before)} ms), ` +
        `all completed ${Date.now() - started} ms after the start`,
    );
  });
});
