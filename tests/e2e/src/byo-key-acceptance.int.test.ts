import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "@genq/api";
import { createSecretBox, parseKeyRing } from "@genq/core";
import { UserProviderKeyRepository } from "@genq/db";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const KEYS = `k1:${randomBytes(32).toString("base64")}`;
const JUNK = "sk-junk-user-key-0000";
const OPERATOR_SECRET = "operator-gateway-secret-1234";

/**
 * Four upstreams: the mock, a keyless OpenAI-compatible server, a gateway whose
 * auth sits in an operator header, and an OpenAI that checks keys and accepts
 * users' own (two per user-key minute).
 */
function providersFile(servers: { keyless: string; gateway: string; open: string }): string {
  return `
version: 1
retry: { baseDelayMs: 20, maxDelayMs: 100, maxInlineWaitMs: 500 }
providers:
  - name: mock
    type: mock
  - name: keyless
    type: openai-compatible
    baseUrl: ${servers.keyless}
    models:
      - id: local-model
        price: { input: 100000, output: 200000 }
  - name: gateway
    type: openai-compatible
    baseUrl: ${servers.gateway}
    keys:
      - id: main
        apiKey: none
    options:
      headers: { x-gateway-token: ${OPERATOR_SECRET} }
    models:
      - id: gateway-model
        price: { input: 100000, output: 200000 }
  - name: open
    type: openai
    baseUrl: ${servers.open}
    acceptsUserKeys: true
    userKeyLimits: { rpm: 2 }
    keys:
      - id: main
        apiKey: sk-system-key-0000
    models:
      - id: gpt-4o-mini
        price: { input: 150000, output: 600000 }
`;
}

describe("users' own keys only on providers that accept them", () => {
  let keyless: FakeOpenAIServer;
  let gateway: FakeOpenAIServer;
  let open: FakeOpenAIServer;
  let directory: string;
  let harness: Harness;
  let app: FastifyInstance;
  let keys: UserProviderKeyRepository;

  beforeAll(async () => {
    [keyless, gateway, open] = await Promise.all([
      startFakeOpenAIServer(),
      startFakeOpenAIServer(),
      startFakeOpenAIServer(),
    ]);
    directory = await mkdtemp(join(tmpdir(), "genq-byo-"));
    const path = join(directory, "providers.yaml");
    await writeFile(path, providersFile({ keyless: keyless.url, gateway: gateway.url, open: open.url }));
    harness = await new Harness({
      workerEnv: { GENQ_ENCRYPTION_KEYS: KEYS, GENQ_PROVIDERS_FILE: path, GENQ_MOCK_LATENCY_MS: "0" },
    }).start();
    const secretBox = createSecretBox(parseKeyRing(KEYS));
    keys = new UserProviderKeyRepository({ db: harness.db, secretBox });
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      quota: harness.quota,
      secretBox,
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await harness?.close();
    await Promise.all([keyless?.close(), gateway?.close(), open?.close()]);
    await rm(directory, { recursive: true, force: true });
  });

  const storeKey = (apiKey: string, provider: string) =>
    app.inject({
      method: "POST",
      url: "/v1/provider-keys",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { provider, apiKey: JUNK },
    });

  it("refuses to store a key for the mock, a keyless server or a header-auth provider, naming why", async () => {
    const user = await harness.createUser();
    for (const provider of ["mock", "keyless", "gateway"]) {
      const refused = await storeKey(user.apiKey, provider);
      expect(refused.statusCode, provider).toBe(400);
      expect(refused.json().error).toMatchObject({
        code: "invalid_request",
        details: { field: "provider", accepting: ["open"] },
      });
      expect(refused.json().error.message).toContain("does not accept users' own keys");
      expect(refused.body).not.toContain(JUNK);
    }
    expect((await storeKey(user.apiKey, "open")).statusCode).toBe(201);
  });

  it("runs jobs on the system key and charges the plan, whatever key the user stored, on providers that do not accept them", async () => {
    const user = await harness.createUser();
    // Keys stored before the operator closed these providers (or written past the API).
    for (const provider of ["mock", "keyless", "gateway"]) {
      await keys.put({ userId: user.userId, provider, apiKey: JUNK });
    }
    let charged = 0;
    for (const provider of ["mock", "keyless", "gateway"]) {
      const submitted = await harness.submit(user.apiKey, {
        type: "text",
        provider,
        input: { prompt: `free ride on ${provider}?`, maxTokens: 50 },
      });
      expect(submitted.statusCode, submitted.body).toBe(202);
      const finished = await harness.waitForJob(user.apiKey, submitted.json().id);
      expect(finished.status, provider).toBe("completed");
      expect((finished.calls as Array<{ keyId: string }>).map((call) => call.keyId)).not.toContain("byo");
      const used = (await harness.quota.status(user.userId)).kinds.textTokens.used;
      expect(used, `quota used after the ${provider} job`).toBeGreaterThan(charged);
      charged = used;
    }
    // Neither upstream ever saw the user's key; the gateway got its operator header, on the system's key only.
    for (const server of [keyless, gateway]) {
      const chats = server.requests.filter((request) => request.path === "/v1/chat/completions");
      expect(chats).toHaveLength(1);
      expect(chats.map((request) => request.headers.authorization)).not.toContain(`Bearer ${JUNK}`);
    }
    expect(gateway.requests.at(-1)?.headers["x-gateway-token"]).toBe(OPERATOR_SECRET);
  });

  it("holds a user's own key on a shared upstream to the provider's rate limit", async () => {
    const user = await harness.createUser();
    await keys.put({ userId: user.userId, provider: "open", apiKey: "sk-user-own-key-5678" });
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const submitted = await harness.submit(user.apiKey, {
        type: "text",
        provider: "open",
        input: { prompt: `own key ${index}`, maxTokens: 20 },
      });
      expect(submitted.statusCode).toBe(202);
      ids.push(submitted.json().id);
    }
    const statuses = async () =>
      Promise.all(ids.map(async (id) => (await harness.getJob(user.apiKey, id)).status));
    await waitUntil(
      async () => (await statuses()).filter((status) => status === "completed").length === 2,
      20_000,
    );
    const userCalls = () =>
      open.requests.filter(
        (request) =>
          request.path === "/v1/chat/completions" &&
          request.headers.authorization === "Bearer sk-user-own-key-5678",
      );
    // The third is handed back to the queue until the user key's minute frees up (rpm 2),
    // with no call made and no attempt spent.
    const queue = new Queue("text", { connection: harness.redis, prefix: harness.prefix });
    try {
      await waitUntil(async () => (await queue.getDelayed()).length === 1, 10_000);
      const [delayed] = await queue.getDelayed();
      expect(delayed?.attemptsMade).toBe(0);
    } finally {
      await queue.close();
    }
    expect((await statuses()).filter((status) => status === "completed")).toHaveLength(2);
    expect(userCalls()).toHaveLength(2);
    // The system key is untouched and the user's plan is not charged for BYO jobs.
    expect(
      open.requests.filter((request) => request.headers.authorization === "Bearer sk-system-key-0000"),
    ).toHaveLength(0);
    expect((await harness.quota.status(user.userId)).kinds.textTokens.used).toBe(0);
  });
});
