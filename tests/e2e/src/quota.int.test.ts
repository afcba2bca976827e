import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { maxInputTokens } from "@genq/providers";
import { afterEach, describe, expect, it } from "vitest";
import { FAST_STALL, Harness, waitUntil } from "./harness.ts";

/**
 * A text job whose reservation and actual usage are both exactly
 * {@link TOKENS_PER_JOB} tokens with the mock provider: the mock counts input as
 * the reservation bounds it (a 40-character ASCII prompt is 40 bytes plus the
 * message and request overheads), and `maxTokens: 4` cuts the mock's (longer)
 * reply to exactly 4 output tokens. Equal reservation and usage mean a settled
 * job frees nothing, so the number of jobs that fit is exact.
 */
const PROMPT_CHARACTERS = 40;
const MAX_TOKENS = 4;
const TOKENS_PER_JOB = maxInputTokens([{ content: "x".repeat(PROMPT_CHARACTERS) }]) + MAX_TOKENS;

function exactTextJob(label: string, mock: Record<string, unknown> = {}) {
  return {
    type: "text",
    input: {
      prompt: `quota ${label} `.padEnd(PROMPT_CHARACTERS, "."),
      maxTokens: MAX_TOKENS,
      ...(Object.keys(mock).length === 0 ? {} : { providerOptions: { mock } }),
    },
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

/** The first instant of the next month, UTC. */
function firstOfNextMonth(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
}

describe("quotas end to end: reservation, settlement, release and reports", () => {
  let harness: Harness | undefined;
  let directory: string | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    if (directory !== undefined) await rm(directory, { recursive: true, force: true });
    directory = undefined;
  });

  /** Reservations of a user by status. */
  async function reservationCounts(userId: string): Promise<Record<string, number>> {
    const rows = await harness!.db.quotaReservation.groupBy({
      by: ["status"],
      where: { userId },
      _count: { _all: true },
    });
    return Object.fromEntries(rows.map((row) => [row.status, row._count._all]));
  }

  it("accepts exactly the 50 of 200 concurrent jobs that fit, completes them across two worker processes, and never overspends", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { userId, apiKey } = await harness.createUser();
    const limit = 50 * TOKENS_PER_JOB;
    await harness.quota.setUserLimits(userId, { textTokenLimit: limit });

    // The hold is taken at admission: the 50 that fit are accepted, the rest refused at once.
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, index) => harness!.submit(apiKey, exactTextJob(`race ${index}`))),
    );
    const ids = responses
      .filter((response) => response.statusCode === 202)
      .map((response) => response.json().id);
    expect(ids).toHaveLength(50);
    const refusedResponses = responses.filter((response) => response.statusCode === 429);
    expect(refusedResponses).toHaveLength(150);
    for (const response of refusedResponses) expect(response.json().error.code).toBe("quota_exceeded");
    expect(new Set(ids).size).toBe(50);
    expect((await harness.quota.status(userId)).kinds.textTokens).toEqual({
      used: 0,
      reserved: limit,
      limit,
    });

    let samples = 0;
    let samplesWithHolds = 0;
    let worst = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { textTokens } = (await harness!.quota.status(userId)).kinds;
        worst = Math.max(worst, textTokens.used + textTokens.reserved);
        expect(textTokens.used + textTokens.reserved).toBeLessThanOrEqual(limit);
        samples += 1;
        if (textTokens.reserved > 0) samplesWithHolds += 1;
      }
    })();

    const worker = { GENQ_TEXT_CONCURRENCY: "40" };
    await Promise.all([harness.spawnWorker(worker), harness.spawnWorker(worker)]);
    try {
      await waitUntil(
        async () =>
          (await harness!.db.job.count({ where: { userId, status: { in: ["completed", "failed"] } } })) ===
          50,
        90_000,
      );
    } finally {
      sampling = false;
      await sampler;
    }
    expect(samples).toBeGreaterThan(10);
    // The sampler saw jobs holding reservations, not only the before and after.
    expect(samplesWithHolds).toBeGreaterThan(0);

    const jobs = await harness.db.job.findMany({ where: { userId } });
    const completed = jobs.filter((job) => job.status === "completed");
    // Every accepted job fits, so none fails later, and no refused job was stored.
    expect(jobs).toHaveLength(50);
    expect(completed).toHaveLength(50);
    for (const job of completed)
      expect((job.inputTokens ?? 0) + (job.outputTokens ?? 0)).toBe(TOKENS_PER_JOB);

    const { textTokens } = (await harness.quota.status(userId)).kinds;
    const charged = completed.reduce((sum, job) => sum + (job.inputTokens ?? 0) + (job.outputTokens ?? 0), 0);
    expect(textTokens).toEqual({ used: charged, reserved: 0, limit });
    expect(worst).toBeLessThanOrEqual(limit);
    // Only the admitted jobs ever held a reservation, and each was settled once.
    expect(await reservationCounts(userId)).toEqual({ settled: 50 });
    const records = await harness.db.usageRecord.aggregate({
      where: { userId },
      _count: { _all: true },
      _sum: { inputTokens: true, outputTokens: true },
    });
    expect(records._count._all).toBe(50);
    expect((records._sum.inputTokens ?? 0) + (records._sum.outputTokens ?? 0)).toBe(textTokens.used);
  }, 120_000);

  it("refuses a submission that cannot fit with 429 quota_exceeded and stores nothing", async () => {
    harness = await new Harness().start();
    const { userId, apiKey } = await harness.createUser();
    await harness.quota.setUserLimits(userId, { textTokenLimit: TOKENS_PER_JOB });
    const first = (await harness.submit(apiKey, exactTextJob("fills the quota"))).json();
    expect((await harness.waitForJob(apiKey, first.id)).status).toBe("completed");
    expect((await harness.quota.status(userId)).kinds.textTokens).toEqual({
      used: TOKENS_PER_JOB,
      reserved: 0,
      limit: TOKENS_PER_JOB,
    });
    const jobsBefore = await harness.db.job.count();

    const refused = await harness.submit(apiKey, exactTextJob("one too many"));
    expect(refused.statusCode).toBe(429);
    const body = refused.json();
    expect(body.error).toMatchObject({
      code: "quota_exceeded",
      details: {
        kind: "text_tokens",
        used: TOKENS_PER_JOB,
        reserved: 0,
        limit: TOKENS_PER_JOB,
        resetsAt: firstOfNextMonth(new Date()).toISOString(),
      },
    });
    expect(body.error.message).toMatch(/text token quota exceeded/);
    expect(await harness.db.job.count()).toBe(jobsBefore);
    expect(await harness.queues.queue("text").getJobCounts("prioritized", "waiting")).toEqual({
      prioritized: 0,
      waiting: 0,
    });
  });

  it("charges a job once, and leaves no reservation, when its worker is killed with SIGKILL between reserve and settle", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { userId, apiKey } = await harness.createUser();
    const first = await harness.spawnWorker(FAST_STALL);
    const job = (await harness.submit(apiKey, exactTextJob("survives a crash", { latencyMs: 3_000 }))).json();
    // Held at admission; then wait for the worker to run it.
    expect(await harness.quota.reservation(job.id)).toMatchObject({ status: "reserved" });
    await waitUntil(async () => (await harness!.jobs.find(job.id))?.status === "active", 20_000);
    expect((await harness.quota.status(userId)).kinds.textTokens.reserved).toBe(TOKENS_PER_JOB);
    first.kill("SIGKILL");
    await exited(first);
    expect((await harness.getJob(apiKey, job.id)).status).toBe("active");

    await harness.spawnWorker(FAST_STALL);
    const finished = await harness.waitForJob(apiKey, job.id, undefined, 30_000);
    expect(finished).toMatchObject({ status: "completed", attempts: 2 });
    const usage = finished.usage as { inputTokens: number; outputTokens: number };
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
    const { textTokens, costMicroUsd } = (await harness.quota.status(userId)).kinds;
    expect(textTokens).toMatchObject({ used: usage.inputTokens + usage.outputTokens, reserved: 0 });
    expect(costMicroUsd.reserved).toBe(0);
    expect(await harness.quota.reservation(job.id)).toMatchObject({ status: "settled" });
    expect(await reservationCounts(userId)).toEqual({ settled: 1 });
  }, 90_000);

  it("releases the reservation of a job canceled while its worker was dead, when another worker picks it up", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { userId, apiKey } = await harness.createUser();
    const first = await harness.spawnWorker(FAST_STALL);
    const job = (
      await harness.submit(apiKey, exactTextJob("orphaned, then canceled", { latencyMs: 5_000 }))
    ).json();
    await waitUntil(async () => (await harness!.jobs.find(job.id))?.status === "active", 20_000);
    first.kill("SIGKILL");
    await exited(first);
    // The job is still active, so the cancel is only a flag that the next worker honours.
    expect((await harness.cancel(apiKey, job.id)).json()).toMatchObject({
      status: "active",
      cancelRequested: true,
    });

    await harness.spawnWorker(FAST_STALL);
    expect((await harness.waitForJob(apiKey, job.id, undefined, 30_000)).status).toBe("canceled");
    await waitUntil(async () => (await harness!.quota.reservation(job.id))?.status === "released", 5_000);
    expect((await harness.quota.status(userId)).kinds.textTokens).toMatchObject({ used: 0, reserved: 0 });
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(0);
  }, 90_000);

  it("releases the whole reservation when a running job is canceled", async () => {
    harness = await new Harness().start();
    const { userId, apiKey } = await harness.createUser();
    const job = (
      await harness.submit(apiKey, exactTextJob("canceled while running", { latencyMs: 10_000 }))
    ).json();
    await waitUntil(async () => (await harness!.jobs.find(job.id))?.status === "active", 10_000);
    expect((await harness.quota.status(userId)).kinds.textTokens.reserved).toBe(TOKENS_PER_JOB);

    expect((await harness.cancel(apiKey, job.id)).statusCode).toBe(200);
    expect((await harness.waitForJob(apiKey, job.id)).status).toBe("canceled");
    await waitUntil(async () => (await harness!.quota.reservation(job.id))?.status === "released", 5_000);
    const { textTokens, costMicroUsd } = (await harness.quota.status(userId)).kinds;
    expect(textTokens).toMatchObject({ used: 0, reserved: 0 });
    expect(costMicroUsd).toMatchObject({ used: 0, reserved: 0 });
  });

  it("releases the reservation a postponed job holds when it is canceled while it waits in the queue", async () => {
    harness = await new Harness().start();
    const { userId, apiKey } = await harness.createUser();
    // A rate limit with a long Retry-After puts the job back in the queue, holding its reservation.
    const job = (
      await harness.submit(
        apiKey,
        exactTextJob("postponed, then canceled", {
          fail: "rate_limited",
          failTimes: 1,
          retryAfterMs: 60_000,
        }),
      )
    ).json();
    // The run met the rate limit and put the job back: a postponement, which spends no
    // attempt (so `attempts` stays 0), and keeps the reservation taken at admission.
    await waitUntil(async () => {
      const current = await harness!.jobs.find(job.id);
      return current?.status === "queued" && current.postponements > 0;
    }, 10_000);
    expect((await harness.quota.status(userId)).kinds.textTokens.reserved).toBe(TOKENS_PER_JOB);

    expect((await harness.cancel(apiKey, job.id)).json().status).toBe("canceled");
    await waitUntil(async () => (await harness!.quota.reservation(job.id))?.status === "released", 5_000);
    expect((await harness.quota.status(userId)).kinds.textTokens).toMatchObject({ used: 0, reserved: 0 });
  });

  it("releases the whole reservation when a job fails without retry", async () => {
    harness = await new Harness().start();
    const { userId, apiKey } = await harness.createUser();
    const job = (
      await harness.submit(apiKey, exactTextJob("refused by the provider", { fail: "invalid_request" }))
    ).json();
    const failed = await harness.waitForJob(apiKey, job.id);
    expect(failed).toMatchObject({ status: "failed", attempts: 1 });
    await waitUntil(async () => (await harness!.quota.reservation(job.id))?.status === "released", 5_000);
    const { textTokens, costMicroUsd } = (await harness.quota.status(userId)).kinds;
    expect(textTokens).toMatchObject({ used: 0, reserved: 0 });
    expect(costMicroUsd).toMatchObject({ used: 0, reserved: 0 });
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(0);
  });

  it("counts the images of an image job against the image quota", async () => {
    harness = await new Harness().start();
    const { userId, apiKey } = await harness.createUser();
    const before = (await harness.quota.status(userId)).kinds.images;
    expect(before).toEqual({ used: 0, reserved: 0, limit: 50 });
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        input: { prompt: "three squares", n: 3, size: "256x256" },
      })
    ).json();
    expect((await harness.waitForJob(apiKey, job.id)).status).toBe("completed");
    const { images, textTokens } = (await harness.quota.status(userId)).kinds;
    expect(images).toEqual({ used: 3, reserved: 0, limit: 50 });
    // Image jobs do not spend text tokens.
    expect(textTokens).toMatchObject({ used: 0, reserved: 0 });
    expect(await harness.quota.reservation(job.id)).toMatchObject({ status: "settled", images: 3 });
  });

  it("reports usage whose totals equal the sum of the per-job costs and tokens, grouped by type and model", async () => {
    directory = await mkdtemp(join(tmpdir(), "genq-quota-"));
    const providersFile = join(directory, "providers.yaml");
    // Priced mock models, so costs are not all zero.
    await writeFile(
      providersFile,
      `
version: 1
providers:
  - name: mock
    type: mock
    options: { latencyMs: 0 }
    models:
      - id: mock-small
        price: { input: 1000000, output: 3000000 }
      - id: mock-large
        price: { input: 7000000, output: 11000000 }
      - id: mock-image
        capabilities: [image]
        price: { perImage: 40000 }
`,
    );
    harness = await new Harness().start({ startWorker: false });
    await harness.startInProcessWorker({ GENQ_PROVIDERS_FILE: providersFile });
    const { userId, apiKey } = await harness.createUser();
    const other = await harness.createUser();

    const bodies = [
      { type: "text", provider: "mock", model: "mock-small", input: { prompt: "a short question" } },
      {
        type: "text",
        provider: "mock",
        model: "mock-small",
        input: { prompt: "another, a little longer, question" },
      },
      {
        type: "text",
        provider: "mock",
        model: "mock-large",
        input: { prompt: "an expensive one", maxTokens: 6 },
      },
      {
        type: "image",
        provider: "mock",
        model: "mock-image",
        input: { prompt: "two dots", n: 2, size: "256x256" },
      },
    ];
    const ids: string[] = [];
    for (const body of bodies) ids.push((await harness.submit(apiKey, body)).json().id);
    // Another user's usage is not in this user's report.
    const foreign = (await harness.submit(other.apiKey, bodies[2])).json();
    // A failed job has no usage record and costs nothing.
    const failedJob = (
      await harness.submit(apiKey, {
        ...bodies[0],
        input: { prompt: "fails", providerOptions: { mock: { fail: "invalid_request" } } },
      })
    ).json();
    const jobs = await Promise.all(ids.map((id) => harness!.waitForJob(apiKey, id)));
    for (const job of jobs) expect(job.status).toBe("completed");
    expect((await harness.waitForJob(other.apiKey, foreign.id)).status).toBe("completed");
    expect((await harness.waitForJob(apiKey, failedJob.id)).status).toBe("failed");

    const costOf = (job: Record<string, unknown>) => job.costMicroUsd as number;
    const tokensOf = (job: Record<string, unknown>) =>
      job.usage as { inputTokens: number; outputTokens: number };
    for (const job of jobs) expect(costOf(job)).toBeGreaterThan(0);
    const expected = {
      jobs: jobs.length,
      inputTokens: jobs.reduce((sum, job) => sum + tokensOf(job).inputTokens, 0),
      outputTokens: jobs.reduce((sum, job) => sum + tokensOf(job).outputTokens, 0),
      images: 2,
      costMicroUsd: jobs.reduce((sum, job) => sum + costOf(job), 0),
    };

    const usage = (query: string) =>
      harness!.app.inject({
        method: "GET",
        url: `/v1/usage${query}`,
        headers: { authorization: `Bearer ${apiKey}` },
      });
    const byType = await usage("?groupBy=type");
    expect(byType.statusCode).toBe(200);
    const report = byType.json();
    expect(report.totals).toMatchObject(expected);
    const textJobs = jobs.filter((job) => job.type === "text");
    expect(report.groups).toEqual([
      expect.objectContaining({ key: "image", jobs: 1, images: 2, costMicroUsd: costOf(jobs[3]!) }),
      expect.objectContaining({
        key: "text",
        jobs: 3,
        images: 0,
        costMicroUsd: textJobs.reduce((sum, job) => sum + costOf(job), 0),
      }),
    ]);

    const byModel = (await usage("?groupBy=model")).json();
    expect(byModel.totals).toEqual(report.totals);
    const modelCost = (model: string) =>
      jobs.filter((job) => job.model === model).reduce((sum, job) => sum + costOf(job), 0);
    expect(byModel.groups.map((group: { key: string; jobs: number; costMicroUsd: number }) => group)).toEqual(
      [
        expect.objectContaining({ key: "mock-image", jobs: 1, costMicroUsd: modelCost("mock-image") }),
        expect.objectContaining({ key: "mock-large", jobs: 1, costMicroUsd: modelCost("mock-large") }),
        expect.objectContaining({ key: "mock-small", jobs: 2, costMicroUsd: modelCost("mock-small") }),
      ],
    );

    // The quota: what the jobs were charged, and when it resets.
    const now = new Date();
    expect(report.quota).toMatchObject({
      plan: "basic",
      resetsAt: firstOfNextMonth(now).toISOString(),
      periodStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString(),
      textTokens: { used: expected.inputTokens + expected.outputTokens, reserved: 0, limit: 100_000 },
      images: { used: 2, reserved: 0, limit: 50 },
      costMicroUsd: { used: expected.costMicroUsd, reserved: 0, limit: 20_000_000 },
    });

    // The projection: this month's cost so far, spread over the month.
    const { projection } = report;
    const daysInMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
    expect(projection).toEqual({
      costSoFarMicroUsd: expected.costMicroUsd,
      daysElapsed: now.getUTCDate(),
      daysInMonth,
      projectedMonthEndCostMicroUsd: Math.round((expected.costMicroUsd / now.getUTCDate()) * daysInMonth),
    });

    // A window that ends before the jobs ran holds none of them.
    const before = (await usage(`?to=${encodeURIComponent(jobs[0]!.createdAt as string)}`)).json();
    expect(before.totals).toMatchObject({ jobs: 0, costMicroUsd: 0 });
    expect(before.projection.costSoFarMicroUsd).toBe(expected.costMicroUsd);

    for (const [query, field] of [
      ["?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z", undefined],
      ["?groupBy=week", "groupBy"],
      ["?from=yesterday", "from"],
      ["?to=2026-13-45T00:00:00Z", "to"],
    ] as const) {
      const refused = await usage(query);
      expect(refused.statusCode, query).toBe(400);
      expect(refused.json().error.code, query).toBe("invalid_request");
      if (field !== undefined) expect(refused.json().error.details.field, query).toBe(field);
    }
    expect(await harness.quota.status(userId)).toMatchObject({ kinds: { textTokens: { reserved: 0 } } });
  });
});
