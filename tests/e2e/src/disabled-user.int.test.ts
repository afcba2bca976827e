import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

/**
 * Disabling a user cancels its pending work (queued jobs, batch items, running
 * batches; running jobs are flagged and aborted), and a worker never runs a job of
 * a disabled user, even one that was already on its way.
 */
describe("a disabled user's work", () => {
  const harness = new Harness();

  beforeAll(async () => {
    await harness.start({ startWorker: false });
  });
  afterAll(() => harness.close());

  function disable(userId: string) {
    return harness.app.inject({
      method: "PATCH",
      url: `/v1/admin/users/${userId}`,
      headers: { authorization: OPERATOR },
      payload: { disabled: true },
    });
  }

  it("is canceled when an operator disables the user: queued jobs, held-back batch items, running jobs", async () => {
    const { userId, apiKey } = await harness.createUser();
    const bystander = await harness.createUser();
    const queued: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const response = await harness.submit(apiKey, { type: "text", input: { prompt: `pending ${index}` } });
      expect(response.statusCode).toBe(202);
      queued.push(response.json().id);
    }
    // One was run before and holds a reservation (a retry waiting in the queue).
    await harness.quota.reserve({ jobId: queued[0]!, userId, textTokens: 500, costMicroUsd: 0 });
    const batch = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: {
        type: "text",
        items: Array.from({ length: 10 }, (_, index) => ({ prompt: `item ${index}` })),
      },
    });
    expect(batch.statusCode).toBe(202);
    const batchId = batch.json().id as string;
    const running = (await harness.submit(apiKey, { type: "text", input: { prompt: "running" } })).json().id;
    expect((await harness.lifecycle.claim(running)).outcome).toBe("claimed");
    const untouched = (
      await harness.submit(bystander.apiKey, { type: "text", input: { prompt: "mine" } })
    ).json().id;

    expect((await disable(userId)).statusCode).toBe(200);

    const rows = await harness.db.job.findMany({ where: { id: { in: queued } } });
    expect(rows.map((row) => [row.status, row.errorCode])).toEqual(
      queued.map(() => ["canceled", "canceled"]),
    );
    for (const id of queued) expect(await harness.queues.queue("text").getJobState(id)).toBe("unknown");
    expect(
      (await harness.db.quotaReservation.findUniqueOrThrow({ where: { jobId: queued[0]! } })).status,
    ).toBe("released");
    const batchRow = await harness.db.batch.findUniqueOrThrow({ where: { id: batchId } });
    expect(batchRow).toMatchObject({ status: "canceled", canceledCount: 10, cancelRequested: true });
    expect(await harness.db.job.count({ where: { batchId, status: { not: "canceled" } } })).toBe(0);
    // A running job is flagged; its worker cancels it at the next safe point.
    expect(await harness.db.job.findUniqueOrThrow({ where: { id: running } })).toMatchObject({
      status: "active",
      cancelRequested: true,
    });
    // Other users' work is not touched.
    expect((await harness.db.job.findUniqueOrThrow({ where: { id: untouched } })).status).toBe("queued");
  });

  it("is never run by a worker, even when the job was already queued as the user was disabled", async () => {
    const { userId, apiKey } = await harness.createUser();
    const id = (await harness.submit(apiKey, { type: "text", input: { prompt: "too late" } })).json().id;
    // Disabled behind the API's back (as a disable racing the job's delivery would be).
    await harness.accounts.updateUser(userId, { disabled: true });

    await harness.startInProcessWorker();
    // Its API key answers 401 now, so the row is read directly.
    const finished = () => harness.db.job.findUniqueOrThrow({ where: { id } });
    await waitUntil(async () => !["queued", "active"].includes((await finished()).status), 20_000);
    const row = await finished();
    expect(row).toMatchObject({ status: "canceled", attempts: 0 });
    expect(await harness.jobs.listCalls(id)).toEqual([]);
    expect(await harness.jobs.countUsageRecords(id)).toBe(0);
  });
});
