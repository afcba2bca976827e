// Quota held at admission (issue 13, item 3): a 202 means the job fits its plan. Concurrent
// submissions beyond the plan are refused with 429 at once; none of the accepted ones
// fails later with quota_exceeded.
import { buildRouterConfig, maxInputTokens, parseProvidersFile, publishRouterCatalog } from "@genq/providers";
import { afterEach, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

const MAX_TOKENS = 8;
const PROMPT = "admission attack ".padEnd(48, ".");
const PER_JOB = maxInputTokens([{ content: PROMPT }]) + MAX_TOKENS;

function textJob(index: number, extra: Record<string, unknown> = {}) {
  // Every prompt the same length: every job plans the same hold.
  return {
    type: "text",
    input: { prompt: `${PROMPT}${String(index).padStart(3, "0")}`, maxTokens: MAX_TOKENS },
    ...extra,
  };
}

describe("quota held at admission", () => {
  let harness: Harness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it("accepts only the concurrent submissions that fit, refuses the rest with 429 at once, and runs every accepted one", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { userId, apiKey } = await harness.createUser();
    const perJob = maxInputTokens([{ content: `${PROMPT}000` }]) + MAX_TOKENS;
    const fits = 12;
    const limit = fits * perJob + perJob - 1;
    await harness.quota.setUserLimits(userId, { textTokenLimit: limit });

    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, index) => harness!.submit(apiKey, textJob(index))),
    );
    const accepted = responses.filter((response) => response.statusCode === 202);
    const refused = responses.filter((response) => response.statusCode === 429);
    expect(accepted).toHaveLength(fits);
    expect(refused).toHaveLength(40 - fits);
    for (const response of refused) {
      expect(response.json().error).toMatchObject({
        code: "quota_exceeded",
        details: { kind: "text_tokens", limit, requested: perJob },
      });
    }

    // Each accepted job holds its plan, the holds sum within the limit, and each job
    // stores the output cap its hold covers.
    const ids = accepted.map((response) => response.json().id as string);
    const holds = await harness.db.quotaReservation.findMany({ where: { userId } });
    expect(holds.map((hold) => hold.jobId).sort()).toEqual([...ids].sort());
    for (const hold of holds)
      expect({ status: hold.status, tokens: Number(hold.textTokens) }).toEqual({
        status: "reserved",
        tokens: perJob,
      });
    const { textTokens } = (await harness.quota.status(userId)).kinds;
    expect(textTokens).toEqual({ used: 0, reserved: fits * perJob, limit });
    const jobs = await harness.db.job.findMany({ where: { userId } });
    expect(jobs).toHaveLength(fits);
    for (const job of jobs) expect(job.reservedOutputTokens).toBe(MAX_TOKENS);

    // Now the jobs run: every accepted job completes, none fails with quota_exceeded.
    await harness.startInProcessWorker();
    await waitUntil(
      async () =>
        (await harness!.db.job.count({ where: { userId, status: { in: ["completed", "failed"] } } })) ===
        fits,
      30_000,
    );
    const finished = await harness.db.job.findMany({ where: { userId } });
    expect(finished.map((job) => job.status)).toEqual(Array(fits).fill("completed"));
    const after = (await harness.quota.status(userId)).kinds.textTokens;
    expect(after.reserved).toBe(0);
    expect(after.used).toBeLessThanOrEqual(limit);
    expect(await harness.db.quotaReservation.count({ where: { userId, status: "settled" } })).toBe(fits);
  }, 60_000);

  it("answers concurrent replays of one Idempotency-Key with one job and one hold, even on a full quota", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { userId, apiKey } = await harness.createUser();
    await harness.quota.setUserLimits(userId, { textTokenLimit: PER_JOB + 3 });
    const body = textJob(0);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => harness!.submit(apiKey, body, { "idempotency-key": "once" })),
    );
    expect(responses.filter((response) => response.statusCode === 202)).toHaveLength(1);
    expect(responses.filter((response) => response.statusCode === 200)).toHaveLength(19);
    expect(new Set(responses.map((response) => response.json().id)).size).toBe(1);
    expect(await harness.db.quotaReservation.count({ where: { userId } })).toBe(1);
    // The quota is full now; a replay still answers 200, a new job 429.
    expect((await harness.submit(apiKey, body, { "idempotency-key": "once" })).statusCode).toBe(200);
    expect((await harness.submit(apiKey, textJob(1))).statusCode).toBe(429);
    expect((await harness.submit(apiKey, textJob(2), { "idempotency-key": "once" })).statusCode).toBe(409);
  });

  it("honours the monthly budget with the prices the workers publish", async () => {
    harness = await new Harness().start({ startWorker: false });
    // What a worker publishes: one priced model, with an output cap.
    const config = buildRouterConfig(
      parseProvidersFile(
        {
          version: 1,
          providers: [
            {
              name: "priced",
              type: "mock",
              models: [{ id: "dear", maxOutputTokens: 300, price: { input: 2_000_000, output: 10_000_000 } }],
            },
          ],
        },
        {},
      ),
      { source: "test" },
    );
    await publishRouterCatalog(harness.redis, harness.prefix, config);
    const { userId, apiKey } = await harness.createUser();
    const body = (index: number) => ({
      type: "text",
      input: { prompt: `${PROMPT}${String(index).padStart(3, "0")}` },
    });
    const inputTokens = maxInputTokens([{ content: `${PROMPT}000` }]);
    // No maxTokens: the cap is the model's 300, and the hold's cost is that worst case.
    const cost = Math.ceil((inputTokens * 2_000_000 + 300 * 10_000_000) / 1_000_000);
    const budget = 5 * cost + cost - 1;
    await harness.quota.setUserLimits(userId, { monthlyBudgetMicroUsd: budget });

    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) => harness!.submit(apiKey, body(index))),
    );
    expect(responses.filter((response) => response.statusCode === 202)).toHaveLength(5);
    const refused = responses.filter((response) => response.statusCode === 429);
    expect(refused).toHaveLength(15);
    for (const response of refused)
      expect(response.json().error.details).toMatchObject({ kind: "cost_micro_usd", requested: cost });
    const { costMicroUsd, textTokens } = (await harness.quota.status(userId)).kinds;
    expect(costMicroUsd).toEqual({ used: 0, reserved: 5 * cost, limit: budget });
    // The refused jobs held no tokens either: all or nothing.
    expect(textTokens.reserved).toBe(5 * (inputTokens + 300));
    for (const job of await harness.db.job.findMany({ where: { userId } }))
      expect(job.reservedOutputTokens).toBe(300);
  });
  it("holds nothing for a user whose own keys cover every candidate provider, and holds for the others", async () => {
    harness = await new Harness().start({ startWorker: false });
    // A published catalog: `vendor` takes users' own keys, `house` does not.
    const provider = (name: string, acceptsUserKeys: boolean) => ({
      name,
      type: "openai",
      acceptsUserKeys,
      keys: [],
      models: [{ id: "m1", capabilities: ["text"], zeroCost: false }],
    });
    const price = (name: string) => ({
      provider: name,
      model: "m1",
      inputPerMillionMicroUsd: 1_000_000,
      outputPerMillionMicroUsd: 1_000_000,
    });
    await harness.redis.set(
      `${harness.prefix}:router:catalog`,
      JSON.stringify({
        version: "v",
        priceVersion: "p",
        defaultRoute: "none",
        publishedAt: new Date().toISOString(),
        providers: [provider("vendor", true), provider("house", false)],
        routes: [],
        prices: [price("vendor"), price("house")],
      }),
    );
    const { userId, apiKey } = await harness.createUser();
    await harness.quota.setUserLimits(userId, { textTokenLimit: PER_JOB + MAX_TOKENS });
    for (const name of ["vendor", "house"]) {
      await harness.db.userProviderKey.create({
        data: { id: crypto.randomUUID(), userId, provider: name, keyId: "k1", ciphertext: "x", hint: "sk-…" },
      });
    }
    // On the user's own key: beyond the quota, yet accepted and holding nothing.
    for (let index = 0; index < 3; index += 1) {
      const response = await harness.submit(apiKey, textJob(index, { provider: "vendor", model: "m1" }));
      expect(response.statusCode).toBe(202);
    }
    expect(await harness.db.quotaReservation.count({ where: { userId } })).toBe(0);
    // A provider that does not take users' keys runs on the system's: held, and refused past the quota.
    expect((await harness.submit(apiKey, textJob(3, { provider: "house", model: "m1" }))).statusCode).toBe(
      202,
    );
    expect((await harness.submit(apiKey, textJob(4, { provider: "house", model: "m1" }))).statusCode).toBe(
      429,
    );
    expect(await harness.db.quotaReservation.count({ where: { userId } })).toBe(1);
  });
});
