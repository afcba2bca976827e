/**
 * Dead letters and redrive (issue 16): a failed job runs again for its owner, a
 * batch's failed items run again and the batch completes again, an operator redrives
 * by filter, a redrive that does not fit the quota is refused, and Bull Board's Retry
 * and Remove act through genq. Real API, real worker on the mock provider, real
 * Postgres and Redis.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

type Json = Record<string, unknown>;

let harness: Harness;
let server: Server;
/** Bodies of webhook deliveries to the receiver, by path. */
const deliveries: Array<{ path: string; body: Json }> = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      deliveries.push({ path: request.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString()) });
      response.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  harness = await new Harness({ workerEnv: { GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" } }).start();
});

afterAll(async () => {
  await harness?.close();
  await new Promise((resolve) => server?.close(resolve));
});

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

function call(apiKey: string, method: "GET" | "POST", url: string, payload?: unknown) {
  return harness.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${apiKey}` },
    ...(payload === undefined ? {} : { payload: payload as Json }),
  });
}

function operator(method: "GET" | "POST" | "PUT", url: string, payload?: unknown) {
  return harness.app.inject({
    method,
    url,
    headers: { authorization: OPERATOR },
    ...(payload === undefined ? {} : { payload: payload as Json }),
  });
}

/** A text job whose first provider call fails (non-retryable), so it fails at once; a redrive then completes. */
function failingOnce(prompt: string): Json {
  return {
    type: "text",
    input: { prompt, providerOptions: { mock: { fail: "invalid_request", failTimes: 1 } } },
    metadata: { suite: "redrive", prompt: "not shown" },
  };
}

async function submitFailed(apiKey: string, prompt: string): Promise<string> {
  const submitted = await harness.submit(apiKey, failingOnce(prompt));
  expect(submitted.statusCode).toBe(202);
  const id = (submitted.json() as { id: string }).id;
  const failed = await harness.waitForJob(apiKey, id);
  expect(failed.status).toBe("failed");
  return id;
}

async function reservation(jobId: string) {
  return harness.db.quotaReservation.findUnique({ where: { jobId } });
}

async function reservedTextTokens(userId: string): Promise<bigint> {
  const row = await harness.db.quotaUsage.findFirst({ where: { userId, kind: "text_tokens" } });
  return row?.reserved ?? 0n;
}

describe("redrive", () => {
  // First in the file: Bull Board's "Retry all" takes every failed entry of the queue.
  it("redrives every failed job of a queue with Bull Board's Retry all, each for its own owner", async () => {
    const owners = [await harness.createUser(), await harness.createUser()];
    const ids = [
      await submitFailed(owners[0]!.apiKey, "retry all, first"),
      await submitFailed(owners[1]!.apiKey, "retry all, second"),
    ];
    await waitUntil(
      async () =>
        (await Promise.all(ids.map((id) => harness.queues.state("text", id)))).every(
          (state) => state === "failed",
        ),
      5_000,
    );
    const retried = await operator("PUT", "/admin/queues/api/queues/text/retry/failed");
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toEqual({ retried: 2, skipped: 0 });
    for (const [index, id] of ids.entries()) {
      const done = await harness.waitForJob(owners[index]!.apiKey, id);
      expect(done).toMatchObject({ status: "completed", attempts: 2 });
      expect((await reservation(id))?.status).toBe("settled");
    }
    // Nothing failed is left to retry: the redriven entries left the failed set.
    const again = await operator("PUT", "/admin/queues/api/queues/text/retry/failed");
    expect(again.json()).toEqual({ retried: 0, skipped: 0 });
  });

  it("retries a failed job for its owner: queued again with a hold, attempts continue, earlier calls stay", async () => {
    const { apiKey, userId } = await harness.createUser();
    const id = await submitFailed(apiKey, "owner retry");
    expect((await reservation(id))?.status).toBe("released");

    await harness.worker?.close();
    harness.worker = undefined;
    const retried = await call(apiKey, "POST", `/v1/jobs/${id}/retry`);
    expect(retried.statusCode).toBe(202);
    expect(retried.json()).toMatchObject({ id, status: "queued", attempts: 1, finishedAt: null });
    // Held anew at the redrive, as at admission.
    expect((await reservation(id))?.status).toBe("reserved");
    expect(await reservedTextTokens(userId)).toBeGreaterThan(0n);

    await harness.startInProcessWorker();
    const done = await harness.waitForJob(apiKey, id);
    expect(done.status).toBe("completed");
    expect(done.attempts).toBe(2);
    const calls = done.calls as Array<{ attempt: number; outcome: string }>;
    expect(calls.map((entry) => [entry.attempt, entry.outcome])).toEqual([
      [1, "error"],
      [2, "ok"],
    ]);
    expect((await reservation(id))?.status).toBe("settled");
    expect(await reservedTextTokens(userId)).toBe(0n);
  });

  it("answers 404 to another user's retry and 409 to a job that did not fail", async () => {
    const owner = await harness.createUser();
    const stranger = await harness.createUser();
    const id = await submitFailed(owner.apiKey, "someone else's");
    const foreign = await call(stranger.apiKey, "POST", `/v1/jobs/${id}/retry`);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ error: { code: "not_found" } });
    expect((await harness.getJob(owner.apiKey, id)).status).toBe("failed");

    const submitted = await harness.submit(owner.apiKey, { type: "text", input: { prompt: "fine" } });
    const fine = (submitted.json() as { id: string }).id;
    await harness.waitForJob(owner.apiKey, fine);
    const conflict = await call(owner.apiKey, "POST", `/v1/jobs/${fine}/retry`);
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ error: { code: "conflict" } });
    expect((await call(owner.apiKey, "POST", "/v1/jobs/not-an-id/retry")).statusCode).toBe(404);
  });

  it("refuses a retry that does not fit the quota with 429 quota_exceeded and writes nothing", async () => {
    const { apiKey, userId } = await harness.createUser();
    const id = await submitFailed(apiKey, "over quota");
    await harness.db.user.update({ where: { id: userId }, data: { textTokenLimit: 10n } });
    const before = await reservedTextTokens(userId);

    const refused = await call(apiKey, "POST", `/v1/jobs/${id}/retry`);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: { code: "quota_exceeded" } });
    expect((await harness.getJob(apiKey, id)).status).toBe("failed");
    expect((await reservation(id))?.status).toBe("released");
    expect(await reservedTextTokens(userId)).toBe(before);

    // The operator's redrive by filter is refused per job, and says so.
    const redrive = await operator("POST", "/v1/admin/jobs/redrive", { userId, limit: 10 });
    expect(redrive.statusCode).toBe(200);
    expect(redrive.json()).toMatchObject({ matched: 1, redriven: 0, refused: { quota_exceeded: 1 } });
  });

  it("retries a completed batch's failed items: the batch runs again, completes again and says so by webhook", async () => {
    const { apiKey } = await harness.createUser();
    const items = Array.from({ length: 6 }, (_, index) =>
      index === 1 || index === 4
        ? {
            prompt: `batch item ${index}`,
            providerOptions: { mock: { fail: "invalid_request", failTimes: 1 } },
          }
        : { prompt: `batch item ${index}` },
    );
    const address = server.address() as AddressInfo;
    const hook = `/batch-${Date.now()}`;
    const accepted = await call(apiKey, "POST", "/v1/batches", {
      type: "text",
      items,
      webhook: { url: `http://127.0.0.1:${address.port}${hook}` },
    });
    expect(accepted.statusCode).toBe(202);
    const batchId = (accepted.json() as { id: string }).id;
    const completedEvents = () =>
      deliveries.filter((entry) => entry.path === hook && entry.body.type === "batch.completed");
    await waitUntil(() => completedEvents().length === 1, 30_000);
    expect(completedEvents()[0]?.body.data).toMatchObject({ counts: { completed: 4, failed: 2 } });

    const retried = await call(apiKey, "POST", `/v1/batches/${batchId}/retry-failed`, {});
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ matched: 2, redriven: 2, remaining: 0 });
    expect((retried.json() as { batch: { status: string } }).batch.status).toBe("running");

    await waitUntil(() => completedEvents().length === 2, 30_000);
    expect(completedEvents()[1]?.body.data).toMatchObject({
      status: "completed",
      counts: { total: 6, completed: 6, failed: 0, canceled: 0, queued: 0 },
    });
    const batch = (await call(apiKey, "GET", `/v1/batches/${batchId}`)).json() as Json;
    expect(batch).toMatchObject({ status: "completed", counts: { completed: 6, failed: 0 } });
    // Nothing left to retry.
    const again = await call(apiKey, "POST", `/v1/batches/${batchId}/retry-failed`, {});
    expect(again.json()).toMatchObject({ matched: 0, redriven: 0, remaining: 0 });
  });

  it("lists dead letters with their last call and redrives them by error code", async () => {
    const { apiKey, userId } = await harness.createUser();
    const ids = [await submitFailed(apiKey, "dead letter 1"), await submitFailed(apiKey, "dead letter 2")];
    const list = await operator(
      "GET",
      `/v1/admin/jobs?status=failed&errorCode=invalid_request&userId=${userId}`,
    );
    expect(list.statusCode).toBe(200);
    const page = list.json() as { data: Array<Json & { lastCall: Json }> };
    expect(page.data.map((job) => job.id).sort()).toEqual([...ids].sort());
    expect(page.data[0]?.lastCall).toMatchObject({
      attempt: 1,
      outcome: "error",
      errorCode: "invalid_request",
    });

    const redrive = await operator("POST", "/v1/admin/jobs/redrive", {
      errorCode: "invalid_request",
      userId,
      limit: 1,
    });
    expect(redrive.json()).toMatchObject({ matched: 1, redriven: 1, remaining: 1 });
    const rest = await operator("POST", "/v1/admin/jobs/redrive", { errorCode: "invalid_request", userId });
    expect(rest.json()).toMatchObject({ matched: 1, redriven: 1, remaining: 0 });
    for (const id of ids) expect((await harness.waitForJob(apiKey, id)).status).toBe("completed");
  });
});

describe("Bull Board speaks genq", () => {
  it("shows a readable job without its prompt, and its Retry redrives the job", async () => {
    const { apiKey, userId } = await harness.createUser();
    const id = await submitFailed(apiKey, "secret prompt text 7f3a");
    const shown = await operator("GET", `/admin/queues/api/queues/text/${id}`);
    expect(shown.statusCode).toBe(200);
    expect(shown.body).not.toContain("secret prompt text");
    expect((shown.json() as { job: { data: Json } }).job.data).toEqual({
      jobId: id,
      userId,
      type: "text",
      status: "failed",
      priority: "normal",
      provider: null,
      model: null,
      batchId: null,
      itemIndex: null,
      attempt: 1,
      errorCode: "invalid_request",
    });
    const listed = await operator("GET", "/admin/queues/api/queues?activeQueue=text&status=failed&page=1");
    expect(listed.statusCode).toBe(200);
    expect(listed.body).not.toContain("secret prompt text");

    const retried = await operator("PUT", `/admin/queues/api/queues/text/${id}/retry`);
    expect(retried.statusCode).toBe(204);
    const done = await harness.waitForJob(apiKey, id);
    expect(done).toMatchObject({ status: "completed", attempts: 2 });
    // Retrying a completed job is not a redrive: 409 with genq's code.
    const refused = await operator("PUT", `/admin/queues/api/queues/text/${id}/retry`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: { code: "conflict" } });
  });

  it("removing a waiting job cancels it in genq, for good; removing a finished one keeps the row", async () => {
    const { apiKey } = await harness.createUser();
    const done = (
      await harness.submit(apiKey, { type: "text", input: { prompt: "finished one" } })
    ).json() as {
      id: string;
    };
    await harness.waitForJob(apiKey, done.id);
    await waitUntil(async () => (await harness.queues.state("text", done.id)) === "completed", 5_000);
    const removedFinished = await operator("PUT", `/admin/queues/api/queues/text/${done.id}/clean`);
    expect(removedFinished.statusCode).toBe(204);
    expect(await harness.queues.state("text", done.id)).toBe("unknown");
    expect((await harness.getJob(apiKey, done.id)).status).toBe("completed");

    await harness.queues.queue("text").pause();
    try {
      const waiting = (
        await harness.submit(apiKey, { type: "text", input: { prompt: "waiting one" } })
      ).json() as {
        id: string;
      };
      await waitUntil(async () => (await harness.queues.state("text", waiting.id)) !== "unknown", 5_000);
      const removed = await operator("PUT", `/admin/queues/api/queues/text/${waiting.id}/clean`);
      expect(removed.statusCode).toBe(204);
      expect((await harness.getJob(apiKey, waiting.id)).status).toBe("canceled");
      expect((await reservation(waiting.id))?.status).toBe("released");
      // Cleaning waiting jobs in bulk would hide them from genq or let the reconciler bring them back.
      const cleanAll = await operator("PUT", "/admin/queues/api/queues/text/clean/wait");
      expect(cleanAll.statusCode).toBe(409);
      expect((await operator("PUT", "/admin/queues/api/queues/text/empty")).statusCode).toBe(409);
      // Several reconcile passes later the canceled job has not come back.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await harness.queues.state("text", waiting.id)).toBe("unknown");
      expect((await harness.getJob(apiKey, waiting.id)).status).toBe("canceled");
    } finally {
      await harness.queues.queue("text").resume();
    }
  });
});
