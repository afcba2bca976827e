import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

describe("result cache of deterministic text jobs", () => {
  const harness = new Harness();
  let user: { userId: string; apiKey: string };

  beforeAll(async () => {
    await harness.start();
    user = await harness.createUser();
  });
  afterAll(() => harness.close());

  async function run(
    input: Record<string, unknown>,
    apiKey = user.apiKey,
  ): Promise<Record<string, unknown> & { id: string }> {
    const submitted = await harness.submit(apiKey, { type: "text", input });
    expect(submitted.statusCode).toBe(202);
    const job = await harness.waitForJob(apiKey, submitted.json().id);
    expect(job.status).toBe("completed");
    return job as unknown as Record<string, unknown> & { id: string };
  }

  async function textTokensUsed(): Promise<bigint> {
    const rows = await harness.db.quotaUsage.findMany({
      where: { userId: user.userId, kind: "text_tokens" },
    });
    return rows.reduce((sum, row) => sum + row.used, 0n);
  }

  it("serves a repeated temperature-0 request from the cache, free and uncharged", async () => {
    const input = { prompt: "cache me please", temperature: 0, maxTokens: 32 };
    const first = await run(input);
    expect(first.result).not.toHaveProperty("cached");
    expect((first.calls as unknown[]).length).toBeGreaterThan(0);
    const chargedAfterFirst = await textTokensUsed();
    expect(chargedAfterFirst).toBeGreaterThan(0n);

    // The same request written with its fields in another order is the same request.
    const second = await run({ maxTokens: 32, temperature: 0, prompt: "cache me please" });
    expect(second.result).toMatchObject({
      cached: true,
      cachedFrom: first.id,
      text: (first.result as { text: string }).text,
    });
    expect(second.calls).toEqual([]);
    expect(second.costMicroUsd).toBe(0);
    expect(second.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
    expect(await textTokensUsed()).toBe(chargedAfterFirst);
    expect(await harness.jobs.countUsageRecords(second.id)).toBe(1);
  });

  it("never serves one user's cached answer to another user, nor shows another user's job id", async () => {
    const bob = await harness.createUser();
    const input = { prompt: "alice's secret question", temperature: 0, maxTokens: 32 };
    const alice = await run(input);
    expect((await run(input)).result).toMatchObject({ cached: true, cachedFrom: alice.id });

    const bobs = await run(input, bob.apiKey);
    expect(bobs.result).not.toHaveProperty("cached");
    expect(bobs.result).not.toHaveProperty("cachedFrom");
    expect((bobs.calls as unknown[]).length).toBeGreaterThan(0);
    // Bob's own repeat is served from his own entry, naming his own job.
    expect((await run(input, bob.apiKey)).result).toMatchObject({ cached: true, cachedFrom: bobs.id });
  });

  it("calls the provider for a different request, for `cache: false` and for non-zero temperature", async () => {
    await run({ prompt: "another prompt", temperature: 0 });
    const differentPrompt = await run({ prompt: "another prompt, changed", temperature: 0 });
    expect(differentPrompt.result).not.toHaveProperty("cached");

    const bypass = await run({ prompt: "another prompt", temperature: 0, cache: false });
    expect(bypass.result).not.toHaveProperty("cached");

    await run({ prompt: "warm", temperature: 0.7 });
    const warm = await run({ prompt: "warm", temperature: 0.7 });
    expect(warm.result).not.toHaveProperty("cached");

    // `cache: true` opts in whatever the temperature.
    const optIn = await run({ prompt: "warm but cached", temperature: 0.7, cache: true });
    const optInAgain = await run({ prompt: "warm but cached", temperature: 0.7, cache: true });
    expect(optInAgain.result).toMatchObject({ cached: true, cachedFrom: optIn.id });
  });

  it("forgets every cached result on POST /v1/admin/cache/clear (operators only)", async () => {
    const input = { prompt: "cleared later", temperature: 0 };
    await run(input);
    expect((await run(input)).result).toMatchObject({ cached: true });

    const anonymous = await harness.app.inject({ method: "POST", url: "/v1/admin/cache/clear" });
    expect(anonymous.statusCode).toBe(401);
    const cleared = await harness.app.inject({
      method: "POST",
      url: "/v1/admin/cache/clear",
      headers: { authorization: BASIC },
    });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json().cleared).toBeGreaterThanOrEqual(1);

    // The worker's in-memory copy goes too (the clear is broadcast), so the provider is called again.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const after = await run(input);
      if (!(after.result as { cached?: boolean }).cached) break;
      if (Date.now() > deadline) throw new Error("the worker kept serving the cleared result");
    }
  });
});
