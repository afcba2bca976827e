import { randomBytes } from "node:crypto";
import { createSecretBox, parseKeyRing } from "@genq/core";
import { UserProviderKeyRepository } from "@genq/db";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

const KEYS = `k1:${randomBytes(32).toString("base64")}`;

describe("jobs on a user's own provider key", () => {
  let server: FakeOpenAIServer;
  let harness: Harness;

  beforeAll(async () => {
    server = await startFakeOpenAIServer();
    harness = await new Harness({
      workerEnv: {
        GENQ_ENCRYPTION_KEYS: KEYS,
        OPENAI_API_KEY: "sk-system-key-0000",
        OPENAI_BASE_URL: server.url,
        GENQ_BYO_PROVIDERS: "openai",
      },
    }).start();
  });
  afterAll(async () => {
    await harness.close();
    await server.close();
  });

  it("runs on the user's key, records usage and cost, and leaves the system quota untouched", async () => {
    const { userId, apiKey } = await harness.createUser();
    const keys = new UserProviderKeyRepository({
      db: harness.db,
      secretBox: createSecretBox(parseKeyRing(KEYS)),
    });
    await keys.put({ userId, provider: "openai", apiKey: "sk-user-own-key-1234" });

    const job = (
      await harness.submit(apiKey, {
        type: "text",
        provider: "openai",
        input: { prompt: "on my key", maxTokens: 20 },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", provider: "openai" });
    expect(finished.costMicroUsd as number).toBeGreaterThan(0);
    expect((finished.calls as Array<{ keyId: string }>).map((call) => call.keyId)).toEqual(["byo"]);

    const chat = server.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(chat.map((request) => request.headers.authorization)).toEqual(["Bearer sk-user-own-key-1234"]);
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
    const status = await harness.quota.status(userId);
    expect(status.kinds.textTokens).toMatchObject({ used: 0, reserved: 0 });

    // A user without a key of their own runs on the system key and is charged.
    const other = await harness.createUser();
    const charged = (
      await harness.submit(other.apiKey, {
        type: "text",
        provider: "openai",
        input: { prompt: "system key" },
      })
    ).json();
    expect((await harness.waitForJob(other.apiKey, charged.id)).status).toBe("completed");
    expect((await harness.quota.status(other.userId)).kinds.textTokens.used).toBeGreaterThan(0);
    expect(server.requests.at(-1)?.headers.authorization).toBe("Bearer sk-system-key-0000");
  });
});
