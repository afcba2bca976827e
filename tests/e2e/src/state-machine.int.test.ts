import { UnrecoverableError, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

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
