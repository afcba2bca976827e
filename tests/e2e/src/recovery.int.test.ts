import { afterEach, describe, expect, it } from "vitest";
import { FAST_STALL, Harness, startPrivateRedis, waitUntil } from "./harness.ts";

function exited(child: import("node:child_process").ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("durability: crashes, shutdowns and lost Redis data", () => {
  let harness: Harness | undefined;
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;

  afterEach(async () => {
    await harness?.close();
    await privateRedis?.stop();
    harness = undefined;
    privateRedis = undefined;
  });

  it("completes a job exactly once after its worker process is killed with SIGKILL mid-job", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const first = await harness.spawnWorker(FAST_STALL);
    const job = (
      await harness.submit(apiKey, {
        type: "text",
        input: { prompt: "survive a crash", providerOptions: { mock: { latencyMs: 1_500 } } },
      })
    ).json();
    await harness.waitForJob(apiKey, job.id, (current) => current.status === "active");
    first.kill("SIGKILL");
    expect(await exited(first)).toBe(null);

    await harness.spawnWorker(FAST_STALL);
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
    // The usage record names the attempt that produced the result: the re-run after the crash.
    expect((await harness.db.usageRecord.findFirstOrThrow({ where: { jobId: job.id } })).attempt).toBe(2);
  });

  it("finishes in-flight jobs on SIGTERM, takes no new ones, and exits 0", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const worker = await harness.spawnWorker({
      GENQ_TEXT_CONCURRENCY: "1",
      GENQ_SHUTDOWN_TIMEOUT_MS: "20000",
    });
    const inFlight = (
      await harness.submit(apiKey, {
        type: "text",
        input: { prompt: "in flight", providerOptions: { mock: { latencyMs: 1_000 } } },
      })
    ).json();
    await harness.waitForJob(apiKey, inFlight.id, (current) => current.status === "active");
    const waiting = (await harness.submit(apiKey, { type: "text", input: { prompt: "waiting" } })).json();
    worker.kill("SIGTERM");

    expect(await exited(worker)).toBe(0);
    expect((await harness.getJob(apiKey, inFlight.id)).status).toBe("completed");
    expect((await harness.getJob(apiKey, waiting.id)).status).toBe("queued");
  });

  it("re-enqueues accepted jobs after Redis loses its data (FLUSHALL) and runs them", async () => {
    // A private Redis: FLUSHALL must not touch anything else on the machine.
    privateRedis = await startPrivateRedis();
    harness = await new Harness({ redisUrl: privateRedis.url }).start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const response = await harness.submit(apiKey, { type: "text", input: { prompt: `accepted ${index}` } });
      expect(response.statusCode).toBe(202);
      ids.push(response.json().id);
    }
    await privateRedis.redis.flushall();
    expect(await harness.queues.queue("text").getJobCounts("prioritized", "waiting")).toEqual({
      prioritized: 0,
      waiting: 0,
    });

    // Age the rows past the reconciler's grace period instead of sleeping through it.
    await harness.db.job.updateMany({
      where: { id: { in: ids } },
      data: { queuedAt: new Date(Date.now() - 60_000) },
    });
    await harness.startInProcessWorker();
    for (const id of ids) expect((await harness.waitForJob(apiKey, id)).status).toBe("completed");
    for (const id of ids) expect(await harness.jobs.countUsageRecords(id)).toBe(1);
  });

  it("answers 503 without storing anything while Redis is down, and accepts again when it returns", async () => {
    privateRedis = await startPrivateRedis();
    harness = await new Harness({ redisUrl: privateRedis.url }).start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    await privateRedis.kill();
    await waitUntil(() => harness!.redis.status !== "ready", 5_000);

    const started = Date.now();
    const refused = await harness.submit(apiKey, { type: "text", input: { prompt: "while down" } });
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe("service_unavailable");
    expect(refused.headers["retry-after"]).toBe("5");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await harness.db.job.count()).toBe(0);
    const ready = await harness.app.inject({ method: "GET", url: "/health/ready" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks).toEqual({ redis: "unavailable", postgres: "ok" });

    await privateRedis.restart();
    await waitUntil(() => harness!.redis.status === "ready", 10_000);
    const accepted = await harness.submit(apiKey, { type: "text", input: { prompt: "after the outage" } });
    expect(accepted.statusCode).toBe(202);
    expect(await harness.queues.has("text", accepted.json().id)).toBe(true);
  });

  it("exits 0 at the SIGTERM deadline with a job still running, which another worker then completes", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const worker = await harness.spawnWorker({ ...FAST_STALL, GENQ_SHUTDOWN_TIMEOUT_MS: "500" });
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

    await harness.spawnWorker(FAST_STALL);
    const finished = await harness.waitForJob(apiKey, job.id, undefined, 30_000);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
  });

  it("runs a job whose retry was waiting in Redis when Redis lost its data", async () => {
    privateRedis = await startPrivateRedis();
    const system = await new Harness({ redisUrl: privateRedis.url }).start();
    harness = system;
    const { apiKey } = await system.createUser();
    const job = (
      await system.submit(apiKey, {
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
    // The row is queued once the retry is recorded; BullMQ moves the job to its delayed set
    // when the processor returns, a moment later.
    await waitUntil(async () => (await system.queues.state("text", job.id)) === "delayed", 10_000);

    await privateRedis.redis.flushall();
    // Age the row past the reconciler's grace period, and drop the fault injection:
    // its failure counter went with the flush and would fail the re-run once more.
    await harness.db.job.update({
      where: { id: job.id },
      data: { queuedAt: new Date(Date.now() - 60 * 60_000), input: { prompt: "retry then flush" } },
    });
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
  });
});
