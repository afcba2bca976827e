import { buildApp } from "@genq/api";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const TERMINAL = ["completed", "failed", "canceled"];

/** A text job body; `mock` steers the mock provider (latency, failures). */
function textJob(prompt: string, mock: Record<string, unknown> = {}) {
  return { type: "text", input: { prompt, providerOptions: { mock } } };
}

/**
 * `Prefer: wait=N` on `POST /v1/jobs` with a real worker: the answer waits on the job's
 * events (the API calls no provider) and carries the finished job, or the usual 202.
 */
describe("submit and wait (Prefer: wait)", () => {
  const harness = new Harness();
  let apiKey: string;

  beforeAll(async () => {
    await harness.start();
    ({ apiKey } = await harness.createUser());
  });

  afterAll(async () => {
    await harness.close();
  });

  async function submitTimed(body: unknown, headers: Record<string, string>) {
    const started = Date.now();
    const response = await harness.submit(apiKey, body, headers);
    return { response, elapsedMs: Date.now() - started, job: response.json() };
  }

  it("answers 200 with the finished job and its result when it finishes within N seconds", async () => {
    const { response, job, elapsedMs } = await submitTimed(textJob("wait for me"), { prefer: "wait=10" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["preference-applied"]).toBe("wait=10");
    expect(job.status).toBe("completed");
    expect(job.result.text).toContain("wait for me");
    expect(job.finishedAt).not.toBeNull();
    expect(elapsedMs).toBeLessThan(10_000);
  });

  it("answers the usual 202 after N seconds when the job is still running", async () => {
    const { response, job, elapsedMs } = await submitTimed(textJob("too slow", { latencyMs: 8_000 }), {
      prefer: "wait=1",
    });
    expect(response.statusCode).toBe(202);
    expect(response.headers["preference-applied"]).toBe("wait=1");
    expect(["queued", "active"]).toContain(job.status);
    expect(job.result).toBeNull();
    expect(elapsedMs).toBeGreaterThanOrEqual(950);
    // Admission and the final read on a loaded machine, not the 8 s the job takes.
    expect(elapsedMs).toBeLessThan(6_000);
  });

  it("answers 200 with the failed job and its error when the job fails", async () => {
    const { response, job } = await submitTimed(textJob("refused", { fail: "invalid_request" }), {
      prefer: "wait=15",
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers["preference-applied"]).toBe("wait=15");
    expect(job.status).toBe("failed");
    expect(job.error.code).toBeTruthy();
  });

  it("answers 200 with the canceled job when the job is canceled during the wait", async () => {
    const waiting = submitTimed(textJob("cancel me", { latencyMs: 30_000 }), { prefer: "wait=20" });
    let id: string | undefined;
    await waitUntil(async () => {
      const page = await harness.app.inject({
        method: "GET",
        url: "/v1/jobs?status=active",
        headers: { authorization: `Bearer ${apiKey}` },
      });
      id = page
        .json()
        .data.find((job: { input: { prompt: string } }) => job.input.prompt === "cancel me")?.id;
      return id !== undefined;
    }, 10_000);
    const canceledAt = Date.now();
    expect((await harness.cancel(apiKey, id!)).statusCode).toBe(200);
    const { response, job } = await waiting;
    expect(response.statusCode).toBe(200);
    expect(job).toMatchObject({ id, status: "canceled" });
    // Ended by the cancel's terminal event, not by the 20 s deadline.
    expect(Date.now() - canceledAt).toBeLessThan(5_000);
  });

  it("waits on an idempotent replay too, and answers it 200 either way", async () => {
    const key = `replay-${Date.now()}`;
    const body = textJob("replayed", { latencyMs: 1_500 });
    const first = await harness.submit(apiKey, body, { "idempotency-key": key });
    expect(first.statusCode).toBe(202);
    const { response, job } = await submitTimed(body, { "idempotency-key": key, prefer: "wait=15" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["preference-applied"]).toBe("wait=15");
    expect(job).toMatchObject({ id: first.json().id, status: "completed" });
  });

  it("ignores wait values that are not a positive integer, and caps larger ones at 60", async () => {
    for (const prefer of ["wait=abc", "wait=0", "wait=-3", "wait=1.5", "wait="]) {
      const { response, elapsedMs } = await submitTimed(textJob(`ignored ${prefer}`, { latencyMs: 3_000 }), {
        prefer,
      });
      expect(response.statusCode, prefer).toBe(202);
      expect(response.headers["preference-applied"], prefer).toBeUndefined();
      expect(elapsedMs, prefer).toBeLessThan(2_000);
    }
    const capped = await submitTimed(textJob("capped"), { prefer: "wait=600" });
    expect(capped.response.statusCode).toBe(200);
    expect(capped.response.headers["preference-applied"]).toBe("wait=60");
    // `wait` alone, among other preferences (RFC 7240 lists): the maximum.
    const bare = await submitTimed(textJob("bare"), { prefer: "respond-async, Wait; foo=bar" });
    expect(bare.response.statusCode).toBe(200);
    expect(bare.response.headers["preference-applied"]).toBe("wait=60");
  });

  it("shows no queue position once the job left the queue", async () => {
    const { job } = await submitTimed(textJob("done already"), { prefer: "wait=10" });
    expect(TERMINAL).toContain(job.status);
    expect((await harness.getJob(apiKey, job.id)).queue).toBeNull();
  });
});

/**
 * The bounds on waits, over real listening API processes (no worker runs: jobs stay
 * queued, so only the deadline, the client or the limits end a wait).
 */
describe("submit and wait: limits and disconnects", () => {
  const harness = new Harness();
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      docs: false,
      waits: { maxWaits: 2, maxWaitsPerUser: 1 },
    });
    base = await app.listen({ port: 0, host: "127.0.0.1" });
  });

  afterAll(async () => {
    await app?.close();
    await harness.close();
  });

  /** A `POST /v1/jobs` over HTTP that the test can abandon (the client disconnects). */
  function post(apiKey: string, prefer: string) {
    const controller = new AbortController();
    const started = Date.now();
    const answer = fetch(`${base}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", prefer },
      body: JSON.stringify(textJob("waits")),
      signal: controller.signal,
    }).then(async (response) => ({
      status: response.status,
      applied: response.headers.get("preference-applied"),
      elapsedMs: Date.now() - started,
      body: (await response.json()) as { status: string },
    }));
    answer.catch(() => {});
    return { answer, disconnect: () => controller.abort() };
  }

  const heldBy = (userId: string) => harness.redis.zcard(`${harness.prefix}:waits:slots:${userId}`);

  it("bounds waits per user and per process, answers at once without Preference-Applied beyond them, and frees a slot when its client disconnects", async () => {
    const first = await harness.createUser();
    const second = await harness.createUser();
    const third = await harness.createUser();

    const held = post(first.apiKey, "wait=30");
    await waitUntil(async () => (await heldBy(first.userId)) === 1, 5_000);

    // The same user's second wait: over its limit of 1.
    const refused = await post(first.apiKey, "wait=30").answer;
    expect(refused.status).toBe(202);
    expect(refused.applied).toBeNull();
    expect(refused.body.status).toBe("queued");
    expect(refused.elapsedMs).toBeLessThan(3_000);

    // Another user takes the process's second and last wait; a third user is over the process's limit.
    const other = post(second.apiKey, "wait=30");
    await waitUntil(async () => (await heldBy(second.userId)) === 1, 5_000);
    const overProcess = await post(third.apiKey, "wait=30").answer;
    expect(overProcess.status).toBe(202);
    expect(overProcess.applied).toBeNull();
    expect(overProcess.elapsedMs).toBeLessThan(3_000);

    // A client that leaves frees its wait at once (long before its 30 s), here and in Redis.
    const leftAt = Date.now();
    held.disconnect();
    await waitUntil(async () => (await heldBy(first.userId)) === 0, 3_000);
    expect(Date.now() - leftAt).toBeLessThan(3_000);
    const again = await post(first.apiKey, "wait=1").answer;
    expect(again.status).toBe(202);
    expect(again.applied).toBe("wait=1");
    expect(again.elapsedMs).toBeGreaterThanOrEqual(950);

    other.disconnect();
    await waitUntil(async () => (await heldBy(second.userId)) === 0, 3_000);
    const afterBoth = await post(third.apiKey, "wait=1").answer;
    expect(afterBoth.applied).toBe("wait=1");
  });
});

/** `queue` on `GET /v1/jobs/:id`: position, jobs ahead and an ETA while a job is queued. */
describe("queue position and ETA", () => {
  const harness = new Harness();

  beforeAll(async () => {
    await harness.start({ startWorker: false });
  });

  afterAll(async () => {
    await harness.close();
  });

  it("gives each queued job its place, moves it up as the jobs ahead complete, with a sane ETA", async () => {
    const { apiKey } = await harness.createUser();
    const ids: string[] = [];
    for (let index = 0; index < 12; index++) {
      const response = await harness.submit(apiKey, textJob(`in line ${index}`, { latencyMs: 150 }));
      expect(response.statusCode).toBe(202);
      ids.push(response.json().id);
    }
    const last = ids[ids.length - 1]!;
    for (const [index, id] of ids.entries()) {
      // Nothing has finished yet: no throughput to estimate from.
      expect((await harness.getJob(apiKey, id)).queue).toEqual({
        state: "waiting",
        position: index + 1,
        ahead: index,
        etaSeconds: null,
      });
    }

    // One job at a time, 150 ms of provider latency each.
    await harness.startInProcessWorker({ GENQ_TEXT_CONCURRENCY: "1" });
    let queue: { position: number; ahead: number; etaSeconds: number | null; state: string } | undefined;
    await waitUntil(async () => {
      const job = await harness.getJob(apiKey, last);
      queue = job.queue as typeof queue;
      return queue !== undefined && queue !== null && queue.position <= 8;
    }, 20_000);
    await harness.worker?.close();
    harness.worker = undefined;
    const now = (await harness.getJob(apiKey, last)).queue as NonNullable<typeof queue>;
    expect(now.state).toBe("waiting");
    expect(now.position).toBeLessThanOrEqual(8);
    expect(now.ahead).toBe(now.position - 1);
    // At least 150 ms per job ahead; the run's overhead on a loaded machine makes it slower, not faster.
    expect(now.etaSeconds).not.toBeNull();
    expect(now.etaSeconds!).toBeGreaterThanOrEqual(Math.floor(now.position * 0.15));
    expect(now.etaSeconds!).toBeLessThanOrEqual(now.position * 3);
    // The jobs that finished show none.
    expect((await harness.getJob(apiKey, ids[0]!)).queue).toBeNull();
  });
});
