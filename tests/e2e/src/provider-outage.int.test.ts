import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@genq/providers/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

/**
 * A job whose only provider is down ends: the failure that opens the circuit and each
 * failed half-open probe spend an attempt, a run that finds the circuit open is
 * postponed (spending none), and postponements end at GENQ_JOB_POSTPONE_DEADLINE_MS.
 */
const ATTEMPTS = 3;

describe("a job whose only provider is down", () => {
  let server: FakeOpenAIServer;
  let directory: string;
  let harness: Harness;

  beforeEach(async () => {
    server = await startFakeOpenAIServer();
    directory = await mkdtemp(join(tmpdir(), "genq-outage-"));
  });

  /** Starts the system with one provider on the fake server; `extra` goes in the file's top level. */
  async function start(options: { rpm?: number; extra?: string }): Promise<void> {
    const path = join(directory, "providers.yaml");
    await writeFile(
      path,
      `
version: 1
retry: { baseDelayMs: 20, maxDelayMs: 50, maxInlineWaitMs: 100, perTargetAttempts: 2 }
${options.extra ?? ""}
providers:
  - name: only
    type: openai-compatible
    baseUrl: ${server.url}
    keys:
      - id: main
        apiKey: sk-main-key
        ${options.rpm === undefined ? "" : `rpm: ${options.rpm}`}
    models:
      - id: fake-model
        price: { input: 100000, output: 200000 }
`,
    );
    harness = await new Harness({
      workerEnv: {
        GENQ_PROVIDERS_FILE: path,
        GENQ_JOB_ATTEMPTS: String(ATTEMPTS),
        GENQ_JOB_POSTPONE_DEADLINE_MS: "2500",
      },
    }).start();
  }

  async function expectReleased(userId: string, jobId: string): Promise<void> {
    const reservation = await harness.db.quotaReservation.findUnique({ where: { jobId } });
    expect(reservation === null || reservation.status === "released").toBe(true);
    const usage = await harness.db.quotaUsage.findMany({ where: { userId } });
    expect(usage.every((entry) => entry.reserved === 0n)).toBe(true);
  }

  afterEach(async () => {
    await harness?.close();
    await server.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("fails provider_unavailable once its attempts or its postponement deadline are spent, releasing its hold", async () => {
    // Every call fails as an overloaded upstream does; the second failure opens the circuit.
    server.setHandler(() => ({
      status: 500,
      body: { error: { message: "upstream down", type: "server_error" } },
    }));
    await start({ extra: "breaker: { failureThreshold: 2, openMs: 800 }" });
    const { userId, apiKey } = await harness.createUser();
    const submitted = await harness.submit(apiKey, {
      type: "text",
      input: { prompt: "is anyone there?", maxTokens: 64 },
    });
    expect(submitted.statusCode).toBe(202);
    const id = submitted.json().id as string;

    const job = await harness.waitForJob(apiKey, id, undefined, 30_000);

    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "provider_unavailable" });
    const row = await harness.db.job.findUniqueOrThrow({ where: { id } });
    // Runs that found the circuit open were postponed, not counted.
    expect(job.attempts).toBe(row.attempts - row.postponements);
    expect(job.attempts).toBeGreaterThanOrEqual(1);
    expect(job.attempts).toBeLessThanOrEqual(ATTEMPTS);
    // Every attempt it counts called the provider; no postponed run did.
    const calls = job.calls as Array<{ attempt: number; outcome: string }>;
    const runsThatCalled = new Set(
      calls.filter((call) => call.outcome === "error").map((call) => call.attempt),
    );
    expect(runsThatCalled.size).toBe(job.attempts);
    // Its quota hold is released; nothing is charged.
    await expectReleased(userId, id);
    const usage = await harness.db.quotaUsage.findMany({ where: { userId } });
    expect(usage.every((entry) => entry.used === 0n)).toBe(true);
  }, 60_000);

  it("fails provider_unavailable at once when the wait it would need runs past the postponement deadline", async () => {
    // One call a minute: the second job would wait about 60 s, past the 2.5 s deadline.
    await start({ rpm: 1 });
    const { userId, apiKey } = await harness.createUser();
    const first = (await harness.submit(apiKey, { type: "text", input: { prompt: "first" } })).json();
    expect((await harness.waitForJob(apiKey, first.id)).status).toBe("completed");

    const second = (await harness.submit(apiKey, { type: "text", input: { prompt: "second" } })).json();
    const job = await harness.waitForJob(apiKey, second.id, undefined, 20_000);

    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "provider_unavailable" });
    // It never called the provider: no attempt was spent.
    expect(job.attempts).toBe(0);
    await expectReleased(userId, second.id);
  }, 60_000);
});
