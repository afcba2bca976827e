import { buildApp } from "@genq/api";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

describe("operator Basic auth under password guessing", () => {
  let harness: Harness;
  /** Two API processes of one deployment: they count failures together through Redis. */
  let first: FastifyInstance;
  let second: FastifyInstance;

  async function api(): Promise<FastifyInstance> {
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: { ...ADMIN, loginLimits: { maxFailuresPerIp: 3, maxFailuresPerUser: 6, windowMs: 60_000 } },
    });
    await app.ready();
    return app;
  }

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
    first = await api();
    second = await api();
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await harness.close();
  });

  function listUsers(app: FastifyInstance, ip: string, password: string, user = ADMIN.user) {
    return app.inject({
      method: "GET",
      url: "/v1/admin/users",
      remoteAddress: ip,
      headers: { authorization: basic(user, password) },
    });
  }

  it("answers 429 with Retry-After once one IP has failed too often, even to the right password", async () => {
    const ip = "198.51.100.10";
    for (const app of [first, second, first]) {
      expect((await listUsers(app, ip, "guess")).statusCode).toBe(401);
    }
    // The other process saw those failures too.
    const blocked = await listUsers(second, ip, ADMIN.password);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ error: { code: "rate_limited" } });
    const retryAfter = Number(blocked.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it("still lets the operator in with the right password from another IP", async () => {
    expect((await listUsers(first, "198.51.100.11", ADMIN.password)).statusCode).toBe(200);
  });

  it("blocks a user name guessed from many IPs, but not the operator at a clean IP", async () => {
    const user = "root";
    const guessers = [
      "203.0.113.1",
      "203.0.113.2",
      "203.0.113.3",
      "203.0.113.4",
      "203.0.113.5",
      "203.0.113.6",
    ];
    for (const ip of guessers) expect((await listUsers(first, ip, "guess", user)).statusCode).toBe(401);
    // Each IP failed only once (under the IP limit), but the name is now locked for them.
    expect((await listUsers(second, guessers[0] as string, "guess", user)).statusCode).toBe(429);
    // An IP with no failure is still asked for the password, and the right one works.
    const clean = await second.inject({
      method: "GET",
      url: "/v1/admin/users",
      remoteAddress: "203.0.113.99",
      headers: { authorization: basic(user, "guess") },
    });
    expect(clean.statusCode).toBe(401);
    expect((await listUsers(second, "203.0.113.100", ADMIN.password)).statusCode).toBe(200);
  });

  it("does not count a request that carries no credentials (the browser's first request)", async () => {
    const ip = "198.51.100.20";
    for (let index = 0; index < 5; index += 1) {
      const response = await first.inject({ method: "GET", url: "/v1/admin/users", remoteAddress: ip });
      expect(response.statusCode).toBe(401);
      expect(response.headers["www-authenticate"]).toContain("Basic");
    }
    expect((await listUsers(first, ip, ADMIN.password)).statusCode).toBe(200);
  });
});
