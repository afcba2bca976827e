import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

describe("usage across users (/v1/admin/usage)", () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await new Harness().start();
  });
  afterAll(async () => harness.close());

  const report = (query: string, authorization = BASIC) =>
    harness.app.inject({ method: "GET", url: `/v1/admin/usage${query}`, headers: { authorization } });

  it("sums every user's completed jobs, by user and by model, for operators only", async () => {
    const alice = await harness.createUser("alice-usage@example.com");
    const bob = await harness.createUser("bob-usage@example.com");
    const tokens: Record<string, number> = {};
    for (const [user, prompts] of [
      [alice, ["one", "two"]],
      [bob, ["three"]],
    ] as const) {
      for (const prompt of prompts) {
        const job = (await harness.submit(user.apiKey, { type: "text", input: { prompt } })).json();
        const done = await harness.waitForJob(user.apiKey, job.id);
        const usage = done.usage as { inputTokens: number; outputTokens: number };
        tokens[user.userId] = (tokens[user.userId] ?? 0) + usage.inputTokens + usage.outputTokens;
      }
    }

    const byUser = await report("?groupBy=user");
    expect(byUser.statusCode).toBe(200);
    const body = byUser.json();
    const groups = Object.fromEntries(
      body.groups.map((group: { key: string }) => [group.key, group]),
    ) as Record<string, { email: string; jobs: number; inputTokens: number; outputTokens: number }>;
    expect(groups[alice.userId]).toMatchObject({ email: "alice-usage@example.com", jobs: 2 });
    expect(groups[bob.userId]).toMatchObject({ email: "bob-usage@example.com", jobs: 1 });
    for (const user of [alice, bob]) {
      const group = groups[user.userId];
      expect((group?.inputTokens ?? 0) + (group?.outputTokens ?? 0)).toBe(tokens[user.userId]);
    }
    expect(body.totals.jobs).toBe(3);

    const byModel = (await report("?groupBy=model")).json();
    expect(byModel.groups).toEqual([expect.objectContaining({ key: "mock/mock-1", jobs: 3 })]);

    expect((await report("?groupBy=user", "Bearer nope")).statusCode).toBe(401);
    const bad = await report("?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("invalid_request");
    expect((await report("?groupBy=planet")).statusCode).toBe(400);
  });
});
