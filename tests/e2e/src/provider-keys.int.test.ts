import { randomBytes } from "node:crypto";
import { buildApp } from "@genq/api";
import { createSecretBox, loggerOptions, parseKeyRing, type SecretBox } from "@genq/core";
import { UserProviderKeyRepository } from "@genq/db";
import { readRouterCatalog } from "@genq/providers";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const K1 = `k1:${randomBytes(32).toString("base64")}`;
const K2 = `k2:${randomBytes(32).toString("base64")}`;

describe("BYO provider keys (/v1/provider-keys)", () => {
  let harness: Harness;
  const apps: FastifyInstance[] = [];
  /** Every log line of every app built here, at trace level. */
  const logLines: string[] = [];

  async function appWith(secretBox: SecretBox | undefined): Promise<FastifyInstance> {
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: {
        ...loggerOptions({ name: "genq-api-test", level: "trace", pretty: false }),
        stream: { write: (line: string) => logLines.push(line) },
      },
      admin: ADMIN,
      ...(secretBox === undefined ? {} : { secretBox }),
    });
    await app.ready();
    apps.push(app);
    return app;
  }

  beforeAll(async () => {
    // The worker publishes the router catalog the API checks provider names against.
    // The worker's OpenAI accepts users' own keys (the mock never does); it is never called here.
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-system-key-0000",
        OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
        GENQ_BYO_PROVIDERS: "openai",
      },
    }).start();
    await waitUntil(
      async () => (await readRouterCatalog(harness.redis, harness.prefix)) !== undefined,
      10_000,
    );
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await harness?.close();
  });

  const call = (
    app: FastifyInstance,
    apiKey: string | undefined,
    method: "GET" | "POST" | "DELETE",
    url: string,
    payload?: Record<string, unknown>,
  ) =>
    app.inject({
      method,
      url,
      headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
      ...(payload === undefined ? {} : { payload }),
    });

  it("stores, lists and deletes a key, never returning or logging it, and keeps no plaintext in the row", async () => {
    const app = await appWith(createSecretBox(parseKeyRing(K1)));
    const user = await harness.createUser();
    const secret = `sk-proj-${randomBytes(24).toString("hex")}`;
    const before = logLines.length;

    const created = await call(app, user.apiKey, "POST", "/v1/provider-keys", {
      provider: "openai",
      apiKey: secret,
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      id: expect.any(String),
      provider: "openai",
      hint: `sk-…${secret.slice(-4)}`,
      createdAt: expect.any(String),
      lastUsedAt: null,
    });
    expect(created.body).not.toContain(secret.slice(3, -4));

    const listed = await call(app, user.apiKey, "GET", "/v1/provider-keys");
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({ data: [created.json()] });
    expect(listed.body).not.toContain(secret.slice(3, -4));

    const rows = await harness.db.$queryRawUnsafe<
      Array<{ ciphertext: string; key_id: string; hint: string }>
    >("SELECT ciphertext, key_id, hint FROM user_provider_keys WHERE user_id = $1::uuid", user.userId);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.key_id).toBe("k1");
    expect(rows[0]?.ciphertext).not.toContain(secret);
    expect(Buffer.from(rows[0]?.ciphertext ?? "", "base64").toString("latin1")).not.toContain(
      secret.slice(3),
    );
    expect(JSON.stringify(rows)).not.toContain(secret.slice(3, -4));

    // A refused body (unknown provider) must not be echoed or logged either.
    const unknown = await call(app, user.apiKey, "POST", "/v1/provider-keys", {
      provider: "no-such-provider",
      apiKey: secret,
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatchObject({ code: "invalid_request", details: { field: "provider" } });
    expect(unknown.body).not.toContain(secret.slice(3, -4));
    const short = await call(app, user.apiKey, "POST", "/v1/provider-keys", {
      provider: "openai",
      apiKey: "sk-x",
    });
    expect(short.statusCode).toBe(400);

    expect((await call(app, user.apiKey, "DELETE", "/v1/provider-keys/openai")).statusCode).toBe(204);
    const again = await call(app, user.apiKey, "DELETE", "/v1/provider-keys/openai");
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe("not_found");
    expect((await call(app, user.apiKey, "GET", "/v1/provider-keys")).json()).toEqual({ data: [] });

    const logged = logLines.slice(before).join("");
    expect(logged).toContain("provider key stored");
    expect(logged).not.toContain(secret.slice(3, -4));
  });

  it("keeps one key per provider and user: another user's list is separate", async () => {
    const app = await appWith(createSecretBox(parseKeyRing(K1)));
    const first = await harness.createUser();
    const second = await harness.createUser();
    await call(app, first.apiKey, "POST", "/v1/provider-keys", {
      provider: "openai",
      apiKey: "sk-first-000000000000aaaa",
    });
    const replaced = await call(app, first.apiKey, "POST", "/v1/provider-keys", {
      provider: "openai",
      apiKey: "sk-first-000000000000bbbb",
    });
    expect(replaced.json().hint).toBe("sk-…bbbb");
    expect((await call(app, first.apiKey, "GET", "/v1/provider-keys")).json().data).toHaveLength(1);
    expect((await call(app, second.apiKey, "GET", "/v1/provider-keys")).json()).toEqual({ data: [] });
    expect((await call(app, second.apiKey, "DELETE", "/v1/provider-keys/openai")).statusCode).toBe(404);
  });

  it("opens keys sealed before a rotation and seals new ones with the new current key", async () => {
    const user = await harness.createUser();
    const before = await appWith(createSecretBox(parseKeyRing(K1)));
    expect(
      (
        await call(before, user.apiKey, "POST", "/v1/provider-keys", {
          provider: "openai",
          apiKey: "sk-old-key-0000000001",
        })
      ).statusCode,
    ).toBe(201);

    const ring = createSecretBox(parseKeyRing(`${K2},${K1}`));
    const after = await appWith(ring);
    const keyIdOfRow = async () =>
      (
        await harness.db.$queryRawUnsafe<Array<{ key_id: string }>>(
          "SELECT key_id FROM user_provider_keys WHERE user_id = $1::uuid AND provider = 'openai'",
          user.userId,
        )
      )[0]?.key_id;
    expect(await keyIdOfRow()).toBe("k1");
    // What the worker will call: the rotated ring still opens the k1 row.
    const keys = new UserProviderKeyRepository({ db: harness.db, secretBox: ring });
    expect(await keys.openForJob(user.userId, "openai")).toBe("sk-old-key-0000000001");
    expect((await call(after, user.apiKey, "GET", "/v1/provider-keys")).json().data[0].lastUsedAt).toEqual(
      expect.any(String),
    );

    // A put through the rotated API seals with k2.
    const replaced = await call(after, user.apiKey, "POST", "/v1/provider-keys", {
      provider: "openai",
      apiKey: "sk-new-key-0000000002",
    });
    expect(replaced.statusCode).toBe(201);
    expect(await keyIdOfRow()).toBe("k2");
    expect(await keys.openForJob(user.userId, "openai")).toBe("sk-new-key-0000000002");
  });

  it("answers 401 without an API key", async () => {
    const app = await appWith(createSecretBox(parseKeyRing(K1)));
    for (const [method, url] of [
      ["GET", "/v1/provider-keys"],
      ["POST", "/v1/provider-keys"],
      ["DELETE", "/v1/provider-keys/openai"],
    ] as const) {
      const response = await call(
        app,
        undefined,
        method,
        url,
        method === "POST" ? { provider: "openai", apiKey: "sk-whatever-1234" } : undefined,
      );
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe("unauthorized");
    }
  });

  it("answers 503 service_unavailable when no GENQ_ENCRYPTION_KEYS is configured", async () => {
    const app = await appWith(undefined);
    const user = await harness.createUser();
    for (const [method, url] of [
      ["GET", "/v1/provider-keys"],
      ["POST", "/v1/provider-keys"],
      ["DELETE", "/v1/provider-keys/openai"],
    ] as const) {
      const response = await call(
        app,
        user.apiKey,
        method,
        url,
        method === "POST" ? { provider: "openai", apiKey: "sk-whatever-1234" } : undefined,
      );
      expect(response.statusCode).toBe(503);
      expect(response.json().error).toMatchObject({
        code: "service_unavailable",
        message: "BYO keys need GENQ_ENCRYPTION_KEYS",
      });
    }
  });
});
