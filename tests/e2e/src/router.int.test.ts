import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeOpenAIServer, openAIErrorBodies, startFakeOpenAIServer } from "@genq/providers/testing";
import { Queue } from "bullmq";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

/** A providers file with one OpenAI-compatible provider on the fake server. */
function providersFile(
  server: FakeOpenAIServer,
  options: { rpm?: number; name?: string; extra?: string } = {},
) {
  return `
version: 1
retry: { baseDelayMs: 20, maxDelayMs: 100, maxInlineWaitMs: 2000 }
providers:
  - name: ${options.name ?? "primary"}
    type: openai-compatible
    baseUrl: ${server.url}
    keys:
      - id: main
        apiKey: \${FAKE_PROVIDER_KEY}
        ${options.rpm === undefined ? "" : `rpm: ${options.rpm}`}
      - id: spare
        apiKey: sk-spare-key
        priority: 2
        ${options.rpm === undefined ? "" : `rpm: ${options.rpm}`}
    models:
      - id: fake-model
        price: { input: 100000, output: 200000 }
${options.extra ?? ""}`;
}

describe("the provider router in worker processes", () => {
  let server: FakeOpenAIServer;
  let directory: string;
  let harness: Harness;
  let apiKey: string;

  beforeEach(async () => {
    server = await startFakeOpenAIServer();
    directory = await mkdtemp(join(tmpdir(), "genq-router-"));
    harness = await new Harness().start({ startWorker: false });
    ({ apiKey } = await harness.createUser());
  });

  afterEach(async () => {
    await harness.close();
    await server.close();
    await rm(directory, { recursive: true, force: true });
  });

  async function writeProviders(text: string): Promise<string> {
    const path = join(directory, "providers.yaml");
    await writeFile(path, text);
    return path;
  }

  function chatCalls() {
    return server.requests.filter((request) => request.path === "/v1/chat/completions");
  }

  it("keeps two worker processes under one key's RPM limit and delays the rest without spending attempts", async () => {
    // Only the first key is usable, so its limit is the whole budget.
    server.setHandler((request) =>
      request.headers.authorization === "Bearer sk-spare-key"
        ? { status: 401, body: openAIErrorBodies.invalidApiKey }
        : undefined,
    );
    const path = await writeProviders(providersFile(server, { rpm: 3 }));
    const env = { GENQ_PROVIDERS_FILE: path, FAKE_PROVIDER_KEY: "sk-main-key" };
    const workers: ChildProcess[] = await Promise.all([harness.spawnWorker(env), harness.spawnWorker(env)]);
    expect(workers).toHaveLength(2);

    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const response = await harness.submit(apiKey, { type: "text", input: { prompt: `limited ${index}` } });
      expect(response.statusCode).toBe(202);
      ids.push(response.json().id);
    }
    await waitUntil(async () => {
      const statuses = await Promise.all(ids.map((id) => harness.getJob(apiKey, id)));
      return statuses.filter((job) => job.status === "completed").length === 3;
    }, 20_000);
    // Give the limited jobs time to try (they must not get through within the minute).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const mainCalls = () =>
      chatCalls().filter((request) => request.headers.authorization === "Bearer sk-main-key");
    expect(mainCalls()).toHaveLength(3);

    const queue = new Queue("text", { connection: harness.redis, prefix: harness.prefix });
    try {
      const delayed = await queue.getDelayed();
      expect(delayed.length).toBe(2);
      for (const job of delayed) expect(job.attemptsMade).toBe(0);
    } finally {
      await queue.close();
    }

    // The rest run once the window frees up, a minute after the first calls.
    await waitUntil(async () => {
      const statuses = await Promise.all(ids.map((id) => harness.getJob(apiKey, id)));
      return statuses.every((job) => job.status === "completed");
    }, 75_000);
    // Admission is exact at the limiter; arrival at the server can drift by network delay, hence 59.5 s.
    const times = mainCalls().map((request) => request.receivedAt);
    for (const time of times) {
      expect(times.filter((other) => other >= time && other < time + 59_500).length).toBeLessThanOrEqual(3);
    }
    // The spare key failed auth and is out of rotation for both processes: at most the calls
    // already in flight when the first 401 came back (one per limited job) reached it.
    const spareCalls = chatCalls().filter(
      (request) => request.headers.authorization === "Bearer sk-spare-key",
    );
    expect(spareCalls.length).toBeGreaterThanOrEqual(1);
    expect(spareCalls.length).toBeLessThanOrEqual(2);
  }, 120_000);

  it("reports provider health to operators and lets them put an exhausted key back", async () => {
    server.setHandler((request) =>
      request.headers.authorization === "Bearer sk-main-key"
        ? { status: 429, body: openAIErrorBodies.insufficientQuota }
        : undefined,
    );
    const path = await writeProviders(providersFile(server));
    await harness.startInProcessWorker({ GENQ_PROVIDERS_FILE: path, FAKE_PROVIDER_KEY: "sk-main-key" });
    const job = (await harness.submit(apiKey, { type: "text", input: { prompt: "health" } })).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished.status).toBe("completed");
    expect(
      (finished.calls as Array<{ keyId: string; errorCode?: string }>).map((call) => [
        call.keyId,
        call.errorCode,
      ]),
    ).toEqual([
      ["main", "credit_exhausted"],
      ["spare", undefined],
    ]);

    expect((await harness.app.inject({ method: "GET", url: "/v1/admin/providers" })).statusCode).toBe(401);
    const report = await harness.app.inject({
      method: "GET",
      url: "/v1/admin/providers",
      headers: { authorization: BASIC },
    });
    expect(report.statusCode).toBe(200);
    const provider = report.json().providers[0];
    expect(provider.name).toBe("primary");
    expect(provider.models[0]).toMatchObject({ model: "fake-model", circuit: "closed", inFlight: 0 });
    const keys = Object.fromEntries(provider.keys.map((key: { id: string }) => [key.id, key]));
    // The operator sees why and when one call will probe the key again (10 minutes by default).
    expect(keys.main).toMatchObject({
      state: "exhausted",
      reason: expect.stringContaining("credit_exhausted"),
    });
    expect(Date.parse(keys.main.until) - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(Date.parse(keys.main.until) - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    expect(provider.acceptsUserKeys).toBe(false);
    expect(keys.spare).toMatchObject({ state: "ok", requestsLastMinute: 1 });
    expect(report.body).not.toContain("sk-main-key");
    expect(report.body).not.toContain("sk-spare-key");

    const reset = await harness.app.inject({
      method: "POST",
      url: "/v1/admin/providers/primary/keys/main/reset",
      headers: { authorization: BASIC },
    });
    expect(reset.statusCode).toBe(204);
    const after = await harness.app.inject({
      method: "GET",
      url: "/v1/admin/providers",
      headers: { authorization: BASIC },
    });
    expect(after.json().providers[0].keys[0]).toMatchObject({ id: "main", state: "ok" });
    const unknown = await harness.app.inject({
      method: "POST",
      url: "/v1/admin/providers/primary/keys/nope/reset",
      headers: { authorization: BASIC },
    });
    expect(unknown.statusCode).toBe(404);
  });

  it("reloads the providers file on SIGHUP and keeps the old configuration when the new one is broken", async () => {
    const second = await startFakeOpenAIServer();
    try {
      const path = await writeProviders(providersFile(server));
      const worker = await harness.spawnWorker({
        GENQ_PROVIDERS_FILE: path,
        FAKE_PROVIDER_KEY: "sk-main-key",
      });
      const run = async (prompt: string) => {
        const job = (await harness.submit(apiKey, { type: "text", input: { prompt } })).json();
        return harness.waitForJob(apiKey, job.id);
      };
      expect((await run("before")).provider).toBe("primary");

      await writeProviders(providersFile(second, { name: "secondary" }));
      worker.kill("SIGHUP");
      await waitUntil(async () => (await run("after reload")).provider === "secondary", 15_000);
      const secondCount = second.requests.length;

      await writeProviders("providers: [ { name: broken, type: nope } ]\n");
      worker.kill("SIGHUP");
      await new Promise((resolve) => setTimeout(resolve, 500));
      const kept = await run("after a broken file");
      expect(kept.status).toBe("completed");
      expect(kept.provider).toBe("secondary");
      expect(second.requests.length).toBeGreaterThan(secondCount);
    } finally {
      await second.close();
    }
  }, 120_000);
});
