import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

describe("text jobs through the API and a worker (mock provider)", () => {
  const harness = new Harness();
  let alice: { userId: string; apiKey: string };
  let bob: { userId: string; apiKey: string };

  beforeAll(async () => {
    await harness.start();
    // Enterprise: the only plan that may submit `urgent` jobs.
    alice = await harness.createUser(undefined, "enterprise");
    bob = await harness.createUser();
  });
  afterAll(() => harness.close());

  it("commits, queues, runs and reports a job with its result and usage", async () => {
    const submitted = await harness.submit(alice.apiKey, {
      type: "text",
      input: { prompt: "Say hello to genq", maxTokens: 64 },
      metadata: { ticket: 42 },
    });
    expect(submitted.statusCode).toBe(202);
    const accepted = submitted.json();
    expect(accepted).toMatchObject({
      status: "queued",
      priority: "normal",
      links: { self: `/v1/jobs/${accepted.id}` },
    });

    const job = await harness.waitForJob(alice.apiKey, accepted.id);
    expect(job.status).toBe("completed");
    expect(job.result).toMatchObject({ provider: "mock", finishReason: "stop" });
    expect((job.result as { text: string }).text).toContain("Say hello to genq");
    const usage = job.usage as { inputTokens: number; outputTokens: number };
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(0);
    expect(job).toMatchObject({
      attempts: 1,
      progress: 100,
      metadata: { ticket: 42 },
      costMicroUsd: 0,
      error: null,
    });
    expect(job.startedAt).not.toBeNull();
    expect(job.finishedAt).not.toBeNull();
    expect(await harness.jobs.countUsageRecords(accepted.id)).toBe(1);
  });

  it("runs an urgent job queued after 50 background jobs first", async () => {
    // Stop the shared worker so all 51 jobs wait, then run them on one worker with concurrency 1.
    await harness.worker?.close();
    const blocker = (
      await harness.submit(alice.apiKey, {
        type: "text",
        priority: "background",
        input: { prompt: "blocker", providerOptions: { mock: { latencyMs: 60_000 } } },
      })
    ).json();
    const worker = await harness.startInProcessWorker({ GENQ_TEXT_CONCURRENCY: "1" });
    await harness.waitForJob(alice.apiKey, blocker.id, (job) => job.status === "active");

    const background: string[] = [];
    for (let index = 0; index < 50; index += 1) {
      const response = await harness.submit(alice.apiKey, {
        type: "text",
        priority: "background",
        input: { prompt: `bg ${index}` },
      });
      background.push(response.json().id);
    }
    const urgent = (
      await harness.submit(alice.apiKey, { type: "text", priority: "urgent", input: { prompt: "urgent" } })
    ).json();
    // Everything is queued behind the busy worker; free it.
    await harness.cancel(alice.apiKey, blocker.id);

    const urgentJob = await harness.waitForJob(alice.apiKey, urgent.id);
    for (const id of background) await harness.waitForJob(alice.apiKey, id);
    const started = await harness.db.job.findMany({
      where: { id: { in: [...background, urgent.id] } },
      select: { id: true, startedAt: true },
    });
    const urgentStart = urgentJob.startedAt as string;
    const firstBackground = Math.min(
      ...started.filter((job) => job.id !== urgent.id).map((job) => job.startedAt!.getTime()),
    );
    expect(new Date(urgentStart).getTime()).toBeLessThanOrEqual(firstBackground);
    await worker.close();
    await harness.startInProcessWorker();
  });

  it("returns the same job for a repeated Idempotency-Key and 409 for a different body", async () => {
    const body = { type: "text", input: { prompt: "once only" } };
    const first = await harness.submit(alice.apiKey, body, { "idempotency-key": "order-7" });
    const second = await harness.submit(alice.apiKey, body, { "idempotency-key": "order-7" });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(200);
    expect(second.json().id).toBe(first.json().id);
    expect(await harness.db.job.count({ where: { idempotencyKey: "order-7" } })).toBe(1);

    const different = await harness.submit(
      alice.apiKey,
      { type: "text", input: { prompt: "something else" } },
      { "idempotency-key": "order-7" },
    );
    expect(different.statusCode).toBe(409);
    expect(different.json().error).toMatchObject({
      code: "idempotency_conflict",
      details: { jobId: first.json().id },
    });

    // The key is per user: another user may use the same key for its own job.
    const bobs = await harness.submit(bob.apiKey, body, { "idempotency-key": "order-7" });
    expect(bobs.statusCode).toBe(202);
    expect(bobs.json().id).not.toBe(first.json().id);
  });

  it("answers concurrent repeats of one Idempotency-Key with a single job", async () => {
    const body = { type: "text", input: { prompt: "raced" } };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => harness.submit(alice.apiKey, body, { "idempotency-key": "race-1" })),
    );
    const ids = new Set(responses.map((response) => response.json().id));
    expect(ids.size).toBe(1);
    expect(responses.filter((response) => response.statusCode === 202)).toHaveLength(1);
    expect(await harness.db.job.count({ where: { idempotencyKey: "race-1" } })).toBe(1);
  });

  it("requires an API key and hides other users' jobs", async () => {
    const job = (await harness.submit(alice.apiKey, { type: "text", input: { prompt: "private" } })).json();

    const anonymous = await harness.app.inject({ method: "GET", url: `/v1/jobs/${job.id}` });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe("unauthorized");
    const wrongKey = await harness.app.inject({
      method: "GET",
      url: `/v1/jobs/${job.id}`,
      headers: { authorization: "Bearer gq_nothing_here" },
    });
    expect(wrongKey.statusCode).toBe(401);
    const malformed = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: "Basic abc" },
    });
    expect(malformed.statusCode).toBe(401);

    const asBob = await harness.app.inject({
      method: "GET",
      url: `/v1/jobs/${job.id}`,
      headers: { authorization: `Bearer ${bob.apiKey}` },
    });
    expect(asBob.statusCode).toBe(404);
    expect(asBob.json().error.code).toBe("not_found");
    const cancelAsBob = await harness.cancel(bob.apiKey, job.id);
    expect(cancelAsBob.statusCode).toBe(404);
  });

  it("refuses a revoked key", async () => {
    const { apiKey, key } = await harness.accounts.createApiKey({ userId: alice.userId, name: "temp" });
    expect(
      (
        await harness.app.inject({
          method: "GET",
          url: "/v1/jobs",
          headers: { authorization: `Bearer ${apiKey}` },
        })
      ).statusCode,
    ).toBe(200);
    await harness.accounts.revokeApiKey(key.prefix);
    expect(
      (
        await harness.app.inject({
          method: "GET",
          url: "/v1/jobs",
          headers: { authorization: `Bearer ${apiKey}` },
        })
      ).statusCode,
    ).toBe(401);
  });

  it("lists a user's jobs newest first with cursor pagination and filters", async () => {
    const carol = await harness.createUser();
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      ids.push(
        (await harness.submit(carol.apiKey, { type: "text", input: { prompt: `page ${index}` } })).json().id,
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "limit=2" : `limit=2&cursor=${cursor}`;
      const page = await harness.app.inject({
        method: "GET",
        url: `/v1/jobs?${query}`,
        headers: { authorization: `Bearer ${carol.apiKey}` },
      });
      expect(page.statusCode).toBe(200);
      const body = page.json();
      expect(body.data.length).toBeLessThanOrEqual(2);
      seen.push(...body.data.map((job: { id: string }) => job.id));
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual([...ids].reverse());

    for (const id of ids) await harness.waitForJob(carol.apiKey, id);
    const completed = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs?status=completed&type=text&limit=100",
      headers: { authorization: `Bearer ${carol.apiKey}` },
    });
    expect(completed.json().data).toHaveLength(5);
    const failed = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs?status=failed",
      headers: { authorization: `Bearer ${carol.apiKey}` },
    });
    expect(failed.json().data).toHaveLength(0);
  });

  it("fails a job without retry when the provider rejects the request", async () => {
    const job = (
      await harness.submit(alice.apiKey, {
        type: "text",
        input: { prompt: "bad request", providerOptions: { mock: { fail: "invalid_request" } } },
      })
    ).json();
    const finished = await harness.waitForJob(alice.apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 1, error: { code: "invalid_request" } });
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(0);
  });

  it("fails a job for a provider that is not configured, naming the configured ones", async () => {
    const job = (
      await harness.submit(alice.apiKey, { type: "text", provider: "nowhere", input: { prompt: "x" } })
    ).json();
    const finished = await harness.waitForJob(alice.apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 1, error: { code: "invalid_request" } });
    expect((finished.error as { message: string }).message).toContain("mock");
  });

  it("retries a retryable provider error with backoff and completes", async () => {
    const job = (
      await harness.submit(alice.apiKey, {
        type: "text",
        input: {
          prompt: `flaky ${Date.now()}`,
          providerOptions: { mock: { fail: "provider_unavailable", failTimes: 2 } },
        },
      })
    ).json();
    const finished = await harness.waitForJob(alice.apiKey, job.id);
    // The router retries once within the attempt (perTargetAttempts 2); the queue retries the job.
    expect(finished).toMatchObject({ status: "completed", attempts: 2, error: null });
    expect(
      (finished.calls as Array<{ attempt: number; outcome: string }>).map(
        (call) => `${call.attempt}:${call.outcome}`,
      ),
    ).toEqual(["1:error", "1:error", "2:ok"]);
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
  });

  it("fails after the last attempt when a retryable error persists", async () => {
    const job = (
      await harness.submit(alice.apiKey, {
        type: "text",
        input: { prompt: "always down", providerOptions: { mock: { fail: "rate_limited" } } },
      })
    ).json();
    const finished = await harness.waitForJob(alice.apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 3, error: { code: "rate_limited" } });
  });

  it("cancels a queued job, which then never runs", async () => {
    await harness.worker?.close();
    const job = (await harness.submit(alice.apiKey, { type: "text", input: { prompt: "never" } })).json();
    const canceled = await harness.cancel(alice.apiKey, job.id);
    expect(canceled.statusCode).toBe(200);
    expect(canceled.json()).toMatchObject({ status: "canceled", cancelRequested: true });
    await harness.startInProcessWorker();
    // A job submitted after it completes, so the worker has drained the queue past the canceled one.
    const after = (await harness.submit(alice.apiKey, { type: "text", input: { prompt: "after" } })).json();
    await harness.waitForJob(alice.apiKey, after.id);
    expect(await harness.getJob(alice.apiKey, job.id)).toMatchObject({
      status: "canceled",
      attempts: 0,
      startedAt: null,
    });
    // Canceling again is harmless.
    const again = await harness.cancel(alice.apiKey, job.id);
    expect(again.statusCode).toBe(200);
  });

  it("cancels an active job at its next safe point, aborting the provider call", async () => {
    const job = (
      await harness.submit(alice.apiKey, {
        type: "text",
        input: { prompt: "long", providerOptions: { mock: { latencyMs: 20_000 } } },
      })
    ).json();
    await harness.waitForJob(alice.apiKey, job.id, (current) => current.status === "active");
    const started = Date.now();
    const response = await harness.cancel(alice.apiKey, job.id);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: "active", cancelRequested: true });
    const finished = await harness.waitForJob(alice.apiKey, job.id);
    expect(finished.status).toBe("canceled");
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(0);
  });

  it("refuses to cancel a completed job with 409", async () => {
    const job = (await harness.submit(alice.apiKey, { type: "text", input: { prompt: "done" } })).json();
    await harness.waitForJob(alice.apiKey, job.id);
    const response = await harness.cancel(alice.apiKey, job.id);
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: "conflict", details: { status: "completed" } });
  });
});
