import { randomBytes } from "node:crypto";
import { buildApp } from "@genq/api";
import { createSecretBox, parseKeyRing } from "@genq/core";
import { readRouterCatalog } from "@genq/providers";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const KEYS = `k1:${randomBytes(32).toString("base64")}`;
const GOOD_KEY = "sk-acme-good-key-0123456789";
const BAD_KEY = "sk-acme-bad-key-9876543210";
const AUTH = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

describe("runtime provider configuration (/v1/admin/providers, routes, audit)", () => {
  let server: FakeOpenAIServer;
  let harness: Harness;
  let app: FastifyInstance;
  let apiKey: string;
  /** Every response body of the admin API in this file: none may hold a secret. */
  const bodies: string[] = [];

  async function admin(method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE", url: string, payload?: unknown) {
    const response = await app.inject({
      method,
      url,
      headers: { authorization: AUTH },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    bodies.push(response.body);
    return response;
  }

  async function catalogHas(
    provider: string,
    predicate: (entry: { models: Array<{ id: string }> }) => boolean,
  ) {
    const catalog = await readRouterCatalog(harness.redis, harness.prefix);
    const entry = catalog?.providers.find((candidate) => candidate.name === provider);
    return entry !== undefined && predicate(entry);
  }

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ apiKey: GOOD_KEY });
    harness = await new Harness({
      workerEnv: {
        GENQ_ENCRYPTION_KEYS: KEYS,
        // No polling within this file's time: a change must reach the worker by its announcement.
        GENQ_PROVIDER_CONFIG_CHECK_MS: "600000",
      },
    }).start();
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      quota: harness.quota,
      logger: false,
      admin: ADMIN,
      secretBox: createSecretBox(parseKeyRing(KEYS)),
    });
    await app.ready();
    ({ apiKey } = await harness.createUser(undefined, "professional"));
  });
  afterAll(async () => {
    await app?.close();
    await harness?.close();
    await server?.close();
  });

  it("adds a provider with two keys and a priced model; a worker runs a job on it without a restart", async () => {
    const created = await admin("POST", "/v1/admin/providers", {
      name: "acme",
      type: "openai-compatible",
      baseUrl: server.url,
      keys: [
        { name: "primary", apiKey: GOOD_KEY, priority: 1 },
        { name: "backup", apiKey: BAD_KEY, priority: 2 },
      ],
      models: [{ id: "acme-chat", price: { input: 1_000_000, output: 2_000_000 } }],
    });
    expect(created.statusCode, created.body).toBe(201);
    const provider = created.json();
    expect(provider.keys.map((key: { name: string; hint: string }) => [key.name, key.hint])).toEqual([
      ["primary", "sk-…6789"],
      ["backup", "sk-…3210"],
    ]);
    expect(provider.models[0]).toMatchObject({
      model: "acme-chat",
      price: { input: 1_000_000, output: 2_000_000 },
    });

    // The worker heard the announcement, rebuilt its router and republished its catalog.
    await waitUntil(
      () => catalogHas("acme", (entry) => entry.models.some((model) => model.id === "acme-chat")),
      15_000,
    );

    // The operators' health view lists the stored provider beside the file's, its keys by hint only.
    const health = await admin("GET", "/v1/admin/providers");
    expect(health.statusCode, health.body).toBe(200);
    const listed = health.json().providers.find((entry: { name: string }) => entry.name === "acme") as
      | { models: Array<{ model: string }>; keys: Array<{ hint: string; priority: number }> }
      | undefined;
    expect(listed?.models.map((model) => model.model)).toEqual(["acme-chat"]);
    expect(listed?.keys.map((key) => [key.hint, key.priority])).toEqual([
      ["sk-…6789", 1],
      ["sk-…3210", 2],
    ]);
    expect(health.json().providers.map((entry: { name: string }) => entry.name)).toContain("mock");

    const submitted = await harness.submit(apiKey, {
      type: "text",
      provider: "acme",
      model: "acme-chat",
      input: { prompt: "hello acme", maxTokens: 20 },
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const finished = await harness.waitForJob(apiKey, submitted.json().id);
    expect(finished).toMatchObject({ status: "completed", provider: "acme", model: "acme-chat" });
    expect(finished.priceVersion).toBe(provider.models[0].priceVersion);
    expect(finished.costMicroUsd as number).toBeGreaterThan(0);
    const chat = server.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(chat.map((request) => request.headers.authorization)).toEqual([`Bearer ${GOOD_KEY}`]);
  });

  it("validates keys on a worker: valid, and invalid with the provider's error code", async () => {
    const before = (await admin("GET", "/v1/admin/providers/acme")).json();
    const idOf = (name: string) => before.keys.find((key: { name: string }) => key.name === name).id;
    for (const name of ["primary", "backup"]) {
      const queued = await admin("POST", `/v1/admin/providers/acme/keys/${idOf(name)}/validate`);
      expect(queued.statusCode, queued.body).toBe(202);
    }
    let keys: Array<{ name: string; check: Record<string, unknown> | null }> = [];
    await waitUntil(async () => {
      keys = (await admin("GET", "/v1/admin/providers/acme")).json().keys;
      return keys.every((key) => key.check !== null);
    }, 10_000);
    expect(keys.find((key) => key.name === "primary")?.check).toMatchObject({ status: "valid" });
    expect(keys.find((key) => key.name === "backup")?.check).toMatchObject({
      status: "invalid",
      errorCode: "auth_failed",
      providerCode: "invalid_api_key",
      httpStatus: 401,
    });
    // The API itself never called the provider: each check is one model list, made by the worker.
    const lists = server.requests.filter((request) => request.path === "/v1/models");
    expect(lists.map((request) => request.headers.authorization).sort()).toEqual(
      [`Bearer ${BAD_KEY}`, `Bearer ${GOOD_KEY}`].sort(),
    );
  });

  it("syncs the provider's models on a worker", async () => {
    expect((await admin("POST", "/v1/admin/providers/acme/sync-models")).statusCode).toBe(202);
    let sync: { models?: string[] } | null = null;
    await waitUntil(async () => {
      sync = (await admin("GET", "/v1/admin/providers/acme")).json().modelSync;
      return sync !== null;
    }, 10_000);
    expect(sync!.models).toContain("gpt-4o-mini");
  });

  it("versions a price change; the earlier job keeps the version it ran with", async () => {
    const first = (await admin("GET", "/v1/admin/providers/acme")).json().models[0];
    const changed = await admin("PUT", "/v1/admin/providers/acme/models/acme-chat", {
      price: { input: 3_000_000, output: 6_000_000 },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    const second = changed.json();
    expect(second.priceVersion).not.toBe(first.priceVersion);
    const versions = (await admin("GET", "/v1/admin/providers/acme/models/acme-chat/prices")).json().data;
    expect(versions.map((version: { id: string }) => version.id)).toEqual([
      second.priceVersion,
      first.priceVersion,
    ]);

    await waitUntil(async () => {
      const catalog = await readRouterCatalog(harness.redis, harness.prefix);
      return catalog?.prices?.some((entry) => entry.version === second.priceVersion) === true;
    }, 15_000);
    const submitted = await harness.submit(apiKey, {
      type: "text",
      provider: "acme",
      model: "acme-chat",
      input: { prompt: "hello again", maxTokens: 20 },
    });
    const later = await harness.waitForJob(apiKey, submitted.json().id);
    expect(later).toMatchObject({ status: "completed", priceVersion: second.priceVersion });

    const jobs = await harness.db.job.findMany({
      where: { provider: "acme" },
      orderBy: { createdAt: "asc" },
      select: { id: true, priceVersion: true },
    });
    expect(jobs.map((job) => job.priceVersion)).toEqual([first.priceVersion, second.priceVersion]);
    const usage = await harness.db.$queryRaw<Array<{ price_version: string }>>`
      SELECT price_version FROM usage_records WHERE job_id = ${jobs[0]!.id}::uuid`;
    expect(usage.map((row) => row.price_version)).toEqual([first.priceVersion]);
  });

  it("refuses an invalid change with the providers file's message and stores nothing", async () => {
    const version = (await admin("GET", "/v1/admin/provider-config")).json().version;

    const unpriced = await admin("POST", "/v1/admin/providers", {
      name: "unpriced",
      type: "openai-compatible",
      baseUrl: server.url,
      models: [{ id: "free-lunch" }],
    });
    expect(unpriced.statusCode).toBe(400);
    expect(unpriced.json().error).toMatchObject({ code: "invalid_request" });
    expect(unpriced.json().error.details.issues).toEqual([
      { path: "providers[unpriced].models[0].price", message: "a model needs a price or zeroCost: true" },
    ]);

    const route = await admin("PUT", "/v1/admin/routes/cheap", { targets: [{ provider: "nowhere" }] });
    expect(route.statusCode).toBe(400);
    expect(route.json().error.details.issues).toEqual([
      { path: "routes[cheap].targets[0].provider", message: 'provider "nowhere" is not configured' },
    ]);

    const badName = await admin("POST", "/v1/admin/providers", {
      name: "Bad Name",
      type: "mock",
    });
    expect(badName.statusCode).toBe(400);
    expect(badName.json().error.details.issues[0].message).toBe(
      "must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
    );

    // A change to a stored provider is checked the same way: the default model must be one of its models.
    const badDefault = await admin("PATCH", "/v1/admin/providers/acme", { defaultModel: "not-listed" });
    expect(badDefault.statusCode).toBe(400);
    expect(badDefault.json().error.details.issues).toEqual([
      { path: "providers[acme].defaultModel", message: 'model "not-listed" is not listed in models' },
    ]);

    // A valid change in between goes through: the backup key is deleted.
    const acme = (await admin("GET", "/v1/admin/providers/acme")).json();
    const backup = acme.keys.find((key: { name: string }) => key.name === "backup");
    expect((await admin("DELETE", `/v1/admin/providers/acme/keys/${backup.id}`)).statusCode).toBe(204);
    expect((await admin("GET", "/v1/admin/providers/acme")).json().keys).toHaveLength(1);

    const after = (await admin("GET", "/v1/admin/provider-config")).json();
    expect(after.providers.map((provider: { name: string }) => provider.name)).toEqual(["acme"]);
    expect(after.providers[0].settings).not.toHaveProperty("defaultModel");
    // Only the key deletion went through.
    expect(after.version).toBe(version + 1);
  });

  it("routes with fallback tiers take effect; a disabled provider leaves the configuration", async () => {
    const route = await admin("PUT", "/v1/admin/routes/cheap", {
      strategy: "cost",
      targets: [
        { provider: "acme", model: "acme-chat", tier: 0 },
        { provider: "mock", tier: 1 },
      ],
    });
    expect(route.statusCode, route.body).toBe(200);
    await waitUntil(async () => {
      const catalog = await readRouterCatalog(harness.redis, harness.prefix);
      return catalog?.routes.some((entry) => entry.name === "cheap") === true;
    }, 15_000);
    const catalog = await readRouterCatalog(harness.redis, harness.prefix);
    expect(catalog?.routes.find((entry) => entry.name === "cheap")?.targets).toEqual([
      { provider: "acme", model: "acme-chat", weight: 1, tier: 0 },
      { provider: "mock", model: "mock-1", weight: 1, tier: 1 },
    ]);
    // The file's (here: the environment's) implicit default route is still the default.
    expect(catalog?.defaultRoute).toBe("default");

    // acme is a target of `cheap`: disabling it is refused with the file's message.
    const refused = await admin("PATCH", "/v1/admin/providers/acme", { disabled: true });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.details.issues[0]).toEqual({
      path: "routes[cheap].targets[0].provider",
      message: 'provider "acme" is not configured',
    });
    expect((await admin("DELETE", "/v1/admin/routes/cheap")).statusCode).toBe(204);
    expect((await admin("PATCH", "/v1/admin/providers/acme", { disabled: true })).statusCode).toBe(200);
    await waitUntil(async () => !(await catalogHas("acme", () => true)), 15_000);
  });

  it("applies a change while a job runs, and the running job completes on the config it started with", async () => {
    const submitted = await harness.submit(apiKey, {
      type: "text",
      provider: "mock",
      input: { prompt: "slow one", providerOptions: { mock: { latencyMs: 3_000 } } },
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    await harness.waitForJob(apiKey, submitted.json().id, (job) => job.status === "active", 10_000);
    const created = await admin("POST", "/v1/admin/providers", { name: "late", type: "mock" });
    expect(created.statusCode, created.body).toBe(201);
    await waitUntil(() => catalogHas("late", () => true), 15_000);
    const finished = await harness.waitForJob(apiKey, submitted.json().id);
    expect(finished).toMatchObject({ status: "completed", provider: "mock", attempts: 1 });
    // The change was stored (and announced) while the job ran.
    expect(Date.parse(finished.finishedAt as string)).toBeGreaterThan(Date.parse(created.json().createdAt));
  });

  it("audits every change with the operator and before/after, and no secret anywhere", async () => {
    const entries: Array<Record<string, unknown>> = [];
    let cursor: string | null = null;
    do {
      const page: { data: Array<Record<string, unknown>>; nextCursor: string | null } = (
        await admin(
          "GET",
          `/v1/admin/provider-config/audit?limit=3${cursor === null ? "" : `&cursor=${cursor}`}`,
        )
      ).json();
      entries.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(entries.map((entry) => entry.action).reverse()).toEqual([
      "provider.create",
      "model.price",
      "key.delete",
      "route.create",
      "route.delete",
      "provider.disable",
      "provider.create",
    ]);
    expect(entries.every((entry) => entry.actor === ADMIN.user)).toBe(true);
    const price = entries.find((entry) => entry.action === "model.price")!;
    expect(price).toMatchObject({
      entityType: "model",
      entityName: "acme/acme-chat",
      before: { price: { input: 1_000_000, output: 2_000_000 } },
      after: { price: { input: 3_000_000, output: 6_000_000 } },
    });
    const disabled = entries.find((entry) => entry.action === "provider.disable")!;
    expect((disabled.after as { keys: Array<{ hint: string }> }).keys[0]!.hint).toBe("sk-…6789");
    expect(disabled).toMatchObject({ before: { disabled: false }, after: { disabled: true } });

    // No secret in any admin response, nor in the stored rows (sealed), nor in the audit log.
    const everything = [...bodies, JSON.stringify(await harness.db.managedProviderKey.findMany())];
    for (const secret of [GOOD_KEY, BAD_KEY]) {
      expect(everything.some((text) => text.includes(secret))).toBe(false);
    }
  });
});
