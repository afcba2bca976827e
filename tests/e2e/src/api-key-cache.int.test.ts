import { buildApp } from "@genq/api";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, REDIS_URL, runCli, startPrivateRedis, waitUntil } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

describe("API key cache across API processes", () => {
  const harness = new Harness();
  /** Two API processes of one deployment (same Postgres, same Redis prefix), both caching keys. */
  let first: FastifyInstance;
  let other: FastifyInstance;

  const apiProcess = async () => {
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      quota: harness.quota,
      logger: false,
      admin: ADMIN,
      apiKeyCacheTtlMs: 30_000,
    });
    await app.ready();
    return app;
  };

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    first = await apiProcess();
    other = await apiProcess();
  });
  afterAll(async () => {
    await first?.close();
    await other?.close();
    await harness.close();
  });

  const listJobs = (app: FastifyInstance, apiKey: string) =>
    app.inject({ method: "GET", url: "/v1/jobs", headers: { authorization: `Bearer ${apiKey}` } });

  it("serves a known key from the cache: a revocation made only in Postgres is not seen until evicted", async () => {
    const { apiKey } = await harness.createUser();
    expect((await listJobs(other, apiKey)).statusCode).toBe(200);
    const [key] = await harness.accounts.findApiKeysByPrefix(apiKey.slice(0, 11));
    await harness.accounts.revokeApiKey(key?.id ?? "");
    // No broadcast: the cached principal still answers (this is what saves the lookup).
    expect((await listJobs(other, apiKey)).statusCode).toBe(200);
    // A broadcast from another process evicts it.
    await harness.redis.publish(
      `${harness.prefix}:api-keys:invalidate`,
      JSON.stringify({ apiKeyId: key?.id }),
    );
    await waitUntil(async () => (await listJobs(other, apiKey)).statusCode === 401, 2_000);
  });

  it("stops a key revoked through one process in every process within milliseconds", async () => {
    const { apiKey } = await harness.createUser();
    expect((await listJobs(first, apiKey)).statusCode).toBe(200);
    expect((await listJobs(other, apiKey)).statusCode).toBe(200);
    const revoke = await first.inject({
      method: "POST",
      url: `/v1/admin/api-keys/${apiKey.slice(0, 11)}/revoke`,
      headers: { authorization: OPERATOR },
    });
    expect(revoke.statusCode).toBe(200);
    const revokedAt = Date.now();
    // The revoking process is evicted before the admin call returns.
    expect((await listJobs(first, apiKey)).statusCode).toBe(401);
    await waitUntil(async () => (await listJobs(other, apiKey)).statusCode === 401, 2_000);
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
  });

  it("stops a key revoked with the CLI in every API process", async () => {
    const { apiKey } = await harness.createUser();
    expect((await listJobs(first, apiKey)).statusCode).toBe(200);
    expect((await listJobs(other, apiKey)).statusCode).toBe(200);
    const revoked = await runCli(["keys", "revoke", apiKey.slice(0, 11)], {
      DATABASE_URL: harness.database.url,
      REDIS_URL,
      GENQ_QUEUE_PREFIX: harness.prefix,
    });
    expect(revoked.code).toBe(0);
    expect(revoked.output).not.toContain("Could not reach Redis");
    // Well inside the 30 s the cache would otherwise trust the key.
    await waitUntil(async () => (await listJobs(first, apiKey)).statusCode === 401, 2_000);
    await waitUntil(async () => (await listJobs(other, apiKey)).statusCode === 401, 2_000);
  });

  it("stops every key of a user disabled through one process in every process", async () => {
    const { userId, apiKey } = await harness.createUser();
    const second = (
      await other.inject({
        method: "POST",
        url: `/v1/admin/users/${userId}/api-keys`,
        headers: { authorization: OPERATOR },
      })
    ).json().apiKey as string;
    for (const key of [apiKey, second]) {
      expect((await listJobs(first, key)).statusCode).toBe(200);
      expect((await listJobs(other, key)).statusCode).toBe(200);
    }
    const disable = await other.inject({
      method: "PATCH",
      url: `/v1/admin/users/${userId}`,
      headers: { authorization: OPERATOR },
      payload: { disabled: true },
    });
    expect(disable.statusCode).toBe(200);
    for (const key of [apiKey, second]) {
      expect((await listJobs(other, key)).statusCode).toBe(401);
      await waitUntil(async () => (await listJobs(first, key)).statusCode === 401, 2_000);
    }
    // Enabling again works at once too (nothing negative is cached).
    await other.inject({
      method: "PATCH",
      url: `/v1/admin/users/${userId}`,
      headers: { authorization: OPERATOR },
      payload: { disabled: false },
    });
    expect((await listJobs(first, apiKey)).statusCode).toBe(200);
  });

  it("evicts a user's keys everywhere when an operator changes its plan (the principal carries the plan)", async () => {
    const { userId, apiKey } = await harness.createUser();
    expect((await listJobs(other, apiKey)).statusCode).toBe(200);
    const change = await first.inject({
      method: "PATCH",
      url: `/v1/admin/users/${userId}`,
      headers: { authorization: OPERATOR },
      payload: { plan: "enterprise" },
    });
    expect(change.statusCode).toBe(200);
    // The other process re-reads the key (and its plan) from Postgres on its next request.
    const [key] = await harness.accounts.findApiKeysByPrefix(apiKey.slice(0, 11));
    await harness.accounts.revokeApiKey(key?.id ?? "");
    await waitUntil(async () => (await listJobs(other, apiKey)).statusCode === 401, 2_000);
  });
});

describe("API key cache while Redis is down", () => {
  it("asks Postgres again as soon as its invalidation channel is lost (an eviction could be missed)", async () => {
    const redis = await startPrivateRedis();
    const harness = new Harness({ redisUrl: redis.url });
    let app: FastifyInstance | undefined;
    try {
      await harness.start({ startWorker: false });
      app = await buildApp({
        db: harness.db,
        redis: harness.redis,
        queues: harness.queues,
        logger: false,
        admin: ADMIN,
        apiKeyCacheTtlMs: 30_000,
      });
      await app.ready();
      const { apiKey } = await harness.createUser();
      const list = () =>
        app!.inject({ method: "GET", url: "/v1/jobs", headers: { authorization: `Bearer ${apiKey}` } });
      expect((await list()).statusCode).toBe(200);
      const [key] = await harness.accounts.findApiKeysByPrefix(apiKey.slice(0, 11));
      await harness.accounts.revokeApiKey(key?.id ?? "");
      expect((await list()).statusCode).toBe(200); // cached, and no broadcast was sent
      await redis.kill();
      await waitUntil(async () => (await list()).statusCode === 401, 5_000);
      await redis.restart(); // so the harness can close its queues
    } finally {
      await app?.close();
      await harness.close();
      await redis.stop();
    }
  });
});
