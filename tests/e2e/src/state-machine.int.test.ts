import { UnrecoverableError, Worker } from "bullmq";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Harness, startPrivateRedis, waitUntil } from "./harness.ts";

const AN_HOUR_AGO = () => new Date(Date.now() - 60 * 60_000);

describe("job state machine under races", () => {
  const harness = new Harness();
  let apiKey: string;

  beforeAll(async () => {
    await harness.start();
    ({ apiKey } = await harness.createUser());
  });
  afterAll(() => harness.close());

  it("cancels instead of retrying when a cancel lands during an attempt that then fails retryably", async () => {
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        input: {
          prompt: `cancel-then-fail ${Date.now()}`,
          providerOptions: { mock: { latencyMs: 400, fail: "provider_unavailable" } },
        },
      })
    ).json();
    await harness.waitForJob(apiKey, job.id, (current) => current.status === "active");
    // The flag without the pub/sub message: as if the abort signal never reached the worker.
    await harness.db.job.update({ where: { id: job.id }, data: { cancelRequested: true } });

    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "canceled", attempts: 1 });
    // BullMQ records the delivery as done, so it is not retried either.
    await waitUntil(async () => (await harness.queues.state("text", job.id)) === "completed", 5_000);
  });

  it("does not cancel a job that nobody canceled when another delivery took it over, and runs it to completion", async () => {
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        input: { prompt: "taken over", providerOptions: { mock: { latencyMs: 400 } } },
      })
    ).json();
    await harness.waitForJob(apiKey, job.id, (current) => current.status === "active");
    // As after a stall: the row went back to queued while this attempt still runs.
    await harness.db.job.update({
      where: { id: job.id },
      data: { status: "queued", queuedAt: AN_HOUR_AGO() },
    });

    // The attempt's completion is refused (the row is not active), BullMQ records the
    // delivery as finished, and the reconciler puts the still-queued job back to run.
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", attempts: 2, cancelRequested: false });
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
  });

  it("re-runs a job that BullMQ holds as failed while Postgres still has it queued", async () => {
    await harness.worker?.close();
    const job = (await harness.submit(apiKey, { type: "text", input: { prompt: "stranded" } })).json();
    // BullMQ says failed (e.g. every attempt ran while Postgres was down); the row says queued.
    const connection = harness.redis.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
    const failing = new Worker(
      "text",
      async () => {
        throw new UnrecoverableError("simulated: Postgres was unreachable on every attempt");
      },
      { connection, prefix: harness.prefix },
    );
    await waitUntil(async () => (await harness.queues.state("text", job.id)) === "failed", 10_000);
    await failing.close();
    connection.disconnect();
    await harness.db.job.update({ where: { id: job.id }, data: { queuedAt: AN_HOUR_AGO() } });
    expect((await harness.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe("queued");

    await harness.startInProcessWorker();
    expect((await harness.waitForJob(apiKey, job.id)).status).toBe("completed");
  });
});

describe("shutdown deadline and lost Redis data during retries", () => {
  let harness: Harness | undefined;
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  afterEach(async () => {
    await harness?.close();
    await privateRedis?.stop();
    harness = undefined;
    privateRedis = undefined;
  });

  it("exits 0 at the SIGTERM deadline with a job still running, which another worker then completes", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const fastStall = { GENQ_LOCK_DURATION_MS: "1500", GENQ_STALLED_INTERVAL_MS: "1000" };
    const worker = await harness.spawnWorker({ ...fastStall, GENQ_SHUTDOWN_TIMEOUT_MS: "500" });
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        input: { prompt: "outlives the deadline", providerOptions: { mock: { latencyMs: 8_000 } } },
      })
    ).json();
    await harness.waitForJob(apiKey, job.id, (current) => current.status === "active");

    const stopping = Date.now();
    worker.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) =>
      worker.on("exit", (exitCode) => resolve(exitCode)),
    );
    expect(code).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(4_000);

    await harness.spawnWorker(fastStall);
    const finished = await harness.waitForJob(apiKey, job.id, undefined, 30_000);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
  });

  it("runs a job whose retry was waiting in Redis when Redis lost its data", async () => {
    privateRedis = await startPrivateRedis();
    harness = await new Harness({ redisUrl: privateRedis.url }).start();
    const { apiKey } = await harness.createUser();
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        input: {
          prompt: `retry then flush ${Date.now()}`,
          providerOptions: { mock: { failTimes: 1, retryAfterMs: 60_000 } },
        },
      })
    ).json();
    await harness.waitForJob(
      apiKey,
      job.id,
      (current) => current.attempts === 1 && current.status === "queued",
    );
    expect(await harness.queues.state("text", job.id)).toBe("delayed");

    await privateRedis.redis.flushall();
    // Age the row past the reconciler's grace period, and drop the fault injection:
    // its failure counter went with the flush and would fail the re-run once more.
    await harness.db.job.update({
      where: { id: job.id },
      data: { queuedAt: AN_HOUR_AGO(), input: { prompt: "retry then flush" } },
    });
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
  });
});
