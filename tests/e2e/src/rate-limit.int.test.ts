import { buildApp } from "@genq/api";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

describe("per-key submission rate limit", () => {
  let harness: Harness;
  let app: FastifyInstance;

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      submitRateLimitPerMinute: 3,
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await harness.close();
  });

  const submit = (apiKey: string) =>
    app.inject({
      method: "POST",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { type: "text", input: { prompt: "limited" } },
    });

  it("answers 429 rate_limited with Retry-After past the limit, per API key, and keeps reads open", async () => {
    const first = await harness.createUser();
    const second = await harness.createUser();
    for (let index = 0; index < 3; index += 1) expect((await submit(first.apiKey)).statusCode).toBe(202);

    const limited = await submit(first.apiKey);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error).toMatchObject({ code: "rate_limited", details: { limit: 3 } });
    expect(limited.json().error.message).toMatch(/at most 3 per minute per API key/);
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Another key has its own budget, and reads are not submissions.
    expect((await submit(second.apiKey)).statusCode).toBe(202);
    const list = await app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${first.apiKey}` },
    });
    expect(list.statusCode).toBe(200);
    expect(list.json().data).toHaveLength(3);
  });
});
