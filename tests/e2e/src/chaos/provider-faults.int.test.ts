import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type FakeOpenAIResponse,
  type FakeOpenAIServer,
  openAIErrorBodies,
  startFakeOpenAIServer,
} from "@genq/providers/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "../harness.ts";
import { CHAOS_FULL, chaosScale, countByStatus, mapConcurrently, unfinishedJobs } from "./chaos-support.ts";

/** One provider call's timeout; a "slow" answer takes longer than this. */
const CALL_TIMEOUT_MS = 800;
const SLOW = { delayMs: CALL_TIMEOUT_MS * 3 } satisfies FakeOpenAIResponse;
const TOO_MANY = { status: 429, body: openAIErrorBodies.rateLimit } satisfies FakeOpenAIResponse;

/**
 * A fault script: what the fake provider answers to the n-th call (from 0) of one
 * job, or undefined for a normal answer; and the terminal state the job must reach.
 * Calls per job: up to 3 per attempt (the router's `maxCalls`), 3 attempts.
 */
interface Fault {
  answer(call: number): FakeOpenAIResponse | undefined;
  expected: { status: "completed" } | { status: "failed"; errorCode: string };
  /** The provider_calls error code the fault leaves, when it leaves one. */
  callError?: string;
  /**
   * The fault outlives the call (a key out of credit is out of rotation for every job):
   * only the first job's call meets it; later jobs are refused without a call (`skipped`).
   */
  sticky?: boolean;
}

const FAULTS: Record<string, Fault> = {
  // A 429 storm with Retry-After, shorter than the job's attempts: waited out, then done.
  "rate-storm-retry-after": {
    answer: (call) => (call < 4 ? { ...TOO_MANY, headers: { "retry-after": "1" } } : undefined),
    expected: { status: "completed" },
    callError: "rate_limited",
  },
  // The same without Retry-After: the router's own backoff.
  "rate-storm": {
    answer: (call) => (call < 4 ? TOO_MANY : undefined),
    expected: { status: "completed" },
    callError: "rate_limited",
  },
  // A 429 storm that outlasts every attempt.
  "rate-storm-endless": {
    answer: () => TOO_MANY,
    expected: { status: "failed", errorCode: "rate_limited" },
    callError: "rate_limited",
  },
  // Out of credit: a 429 that is not worth retrying.
  "out-of-credit": {
    answer: () => ({ status: 429, body: openAIErrorBodies.insufficientQuota }),
    expected: { status: "failed", errorCode: "credit_exhausted" },
    callError: "credit_exhausted",
    sticky: true,
  },
  // A 5xx burst (500, 502, 503, 500, 502) and then a healthy provider.
  "5xx-burst": {
    answer: (call) =>
      call < 5 ? { status: [500, 502, 503][call % 3], body: openAIErrorBodies.serverError } : undefined,
    expected: { status: "completed" },
    callError: "provider_unavailable",
  },
  "5xx-endless": {
    answer: () => ({ status: 503, body: "upstream connect error" }),
    expected: { status: "failed", errorCode: "provider_unavailable" },
    callError: "provider_unavailable",
  },
  // Answers slower than the call timeout, twice, then in time.
  "timeout-twice": {
    answer: (call) => (call < 2 ? SLOW : undefined),
    expected: { status: "completed" },
    callError: "timeout",
  },
  "timeout-endless": {
    answer: () => SLOW,
    expected: { status: "failed", errorCode: "timeout" },
    callError: "timeout",
  },
  // 200 with a body that is not JSON, every time: the provider's fault, retried, then failed.
  "malformed-json": {
    answer: () => ({ status: 200, headers: { "content-type": "application/json" }, body: '{"choices": [' }),
    expected: { status: "failed", errorCode: "provider_unavailable" },
    callError: "provider_unavailable",
  },
  // 200 with valid JSON of the wrong shape (no choices).
  "wrong-shape": {
    answer: () => ({ status: 200, body: { object: "chat.completion", data: "surprise" } }),
    expected: { status: "failed", errorCode: "provider_unavailable" },
    callError: "provider_unavailable",
  },
  // A malformed answer once, then a good one.
  "malformed-once": {
    answer: (call) => (call < 1 ? { status: 200, body: "<html>502 Bad Gateway</html>" } : undefined),
    expected: { status: "completed" },
    callError: "provider_unavailable",
  },
  // The connection is reset before any answer, twice, then a good one.
  "reset-twice": {
    answer: (call) => (call < 2 ? { disconnect: true } : undefined),
    expected: { status: "completed" },
    callError: "provider_unavailable",
  },
  "reset-endless": {
    answer: () => ({ disconnect: true }),
    expected: { status: "failed", errorCode: "provider_unavailable" },
    callError: "provider_unavailable",
  },
  // No fault: the control group.
  healthy: { answer: () => undefined, expected: { status: "completed" } },
};

const JOBS_PER_FAULT = chaosScale(4, 40);

/**
 * A providers file with one provider per fault kind, all on the fake server: a key
 * out of credit or cooling down after a 429 belongs to one kind, so each job's
 * outcome follows from its own script and not from another kind's storm.
 */
function providersFile(server: FakeOpenAIServer): string {
  const providers = Object.keys(FAULTS).map(
    (kind) => `
  - name: ${kind}
    type: openai-compatible
    baseUrl: ${server.url}
    keys:
      - id: ${kind}-key
        apiKey: sk-${kind}
    models:
      - id: fake-model
        price: { input: 100000, output: 200000 }`,
  );
  return `
version: 1
retry:
  maxCalls: 3
  perTargetAttempts: 3
  baseDelayMs: 20
  maxDelayMs: 200
  maxInlineWaitMs: 1500
  callTimeoutMs: ${CALL_TIMEOUT_MS}
  deadlineMs: 6000
# The breaker would turn one job's faults into another's (an open circuit skips the
# call); each job's outcome here must follow from its own fault script.
breaker: { failureThreshold: 100000 }
providers:${providers.join("")}
`;
}

describe("chaos: provider faults (429 storms, 5xx bursts, timeouts, malformed bodies, resets)", () => {
  let server: FakeOpenAIServer;
  let directory: string;
  let harness: Harness;

  beforeAll(async () => {
    server = await startFakeOpenAIServer();
    directory = await mkdtemp(join(tmpdir(), "genq-chaos-providers-"));
    harness = await new Harness().start({ startWorker: false });
  });

  afterAll(async () => {
    await harness?.close();
    await server?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("brings every job to the terminal state its fault calls for, and none stays queued or active", {
    timeout: chaosScale(150_000, 900_000),
  }, async () => {
    const started = Date.now();
    const callsPerPrompt = new Map<string, number>();
    server.setHandler((request) => {
      if (request.path !== "/v1/chat/completions") return undefined;
      const messages = (request.body as { messages?: Array<{ content?: unknown }> }).messages ?? [];
      const prompt = String(messages.at(-1)?.content ?? "");
      const kind = /^fault (\S+) /.exec(prompt)?.[1];
      const fault = kind === undefined ? undefined : FAULTS[kind];
      const call = callsPerPrompt.get(prompt) ?? 0;
      callsPerPrompt.set(prompt, call + 1);
      return fault?.answer(call);
    });
    const path = join(directory, "providers.yaml");
    await writeFile(path, providersFile(server));
    await harness.startInProcessWorker({
      GENQ_PROVIDERS_FILE: path,
      GENQ_JOB_ATTEMPTS: "3",
      GENQ_RETRY_BACKOFF_MS: "100",
      GENQ_ATTEMPT_TIMEOUT_MS: "10000",
      GENQ_TEXT_CONCURRENCY: "32",
    });
    const { userId, apiKey } = await harness.createUser();
    await harness.quota.setUserLimits(userId, { textTokenLimit: 1_000_000_000 });

    const plan = Object.keys(FAULTS).flatMap((kind) =>
      Array.from({ length: JOBS_PER_FAULT }, (_, index) => ({ kind, prompt: `fault ${kind} ${index}` })),
    );
    // Shuffled, so storms of one kind overlap with the others.
    plan.sort(() => Math.random() - 0.5);
    const jobs = await mapConcurrently(plan, 8, async ({ kind, prompt }) => {
      const response = await harness.submit(apiKey, { type: "text", provider: kind, input: { prompt } });
      expect(response.statusCode, response.body).toBe(202);
      return { kind, id: response.json().id as string };
    });

    // Bounded: the slowest script is 3 attempts × (3 slow calls + backoff).
    await waitUntil(async () => (await unfinishedJobs(harness)) === 0, chaosScale(120_000, 600_000)).catch(
      async (error: unknown) => {
        throw new Error(
          `${(error as Error).message}; jobs by status: ${JSON.stringify(await countByStatus(harness))}`,
        );
      },
    );
    const finishedAfterMs = Date.now() - started;

    const rows = new Map(
      (
        await harness.db.job.findMany({ select: { id: true, status: true, errorCode: true, attempts: true } })
      ).map((row) => [row.id, row]),
    );
    const calls = await harness.db.providerCall.findMany({
      select: { jobId: true, outcome: true, errorCode: true },
    });
    const summary: Record<string, string> = {};
    for (const [kind, fault] of Object.entries(FAULTS)) {
      const ofKind = jobs.filter((job) => job.kind === kind);
      const outcomes = ofKind.map((job) => {
        const row = rows.get(job.id);
        return row?.status === "failed"
          ? { status: row.status, errorCode: row.errorCode }
          : { status: row?.status };
      });
      expect(outcomes, kind).toEqual(ofKind.map(() => fault.expected));
      const kindCalls = calls.filter((call) => ofKind.some((job) => job.id === call.jobId));
      if (fault.callError !== undefined) {
        // The provider_calls log records the fault, and a failed call of every job of this kind.
        expect(
          kindCalls.some((call) => call.errorCode === fault.callError),
          kind,
        ).toBe(true);
        for (const job of ofKind) {
          if (fault.sticky) {
            expect(
              kindCalls.some((call) => call.jobId === job.id && call.outcome !== "ok"),
              kind,
            ).toBe(true);
            continue;
          }
          expect(
            kindCalls.some((call) => call.jobId === job.id && call.errorCode === fault.callError),
            `${kind}: a ${fault.callError} call of job ${job.id}`,
          ).toBe(true);
        }
      }
      if (fault.expected.status === "completed") {
        for (const job of ofKind) {
          expect(
            kindCalls.filter((call) => call.jobId === job.id && call.outcome === "ok"),
            kind,
          ).toHaveLength(1);
        }
      }
      const attempts = ofKind.map((job) => rows.get(job.id)?.attempts ?? 0);
      summary[kind] =
        `${outcomes[0]?.status}${fault.expected.status === "failed" ? `/${fault.expected.errorCode}` : ""}, ` +
        `${kindCalls.length} calls, attempts ${Math.min(...attempts)}-${Math.max(...attempts)}`;
    }

    // Charged once for each completed job, nothing for the failed ones, nothing held.
    const completed = jobs.filter((job) => rows.get(job.id)?.status === "completed");
    expect(await harness.db.usageRecord.count()).toBe(completed.length);
    // A failed job's reservation is released just after the failure is recorded.
    const held = () => harness.db.quotaReservation.findMany({ where: { status: "reserved" } });
    await waitUntil(async () => (await held()).length === 0, 10_000).catch(async () => {
      const kinds = (await held()).map((row) => jobs.find((job) => job.id === row.jobId)?.kind);
      throw new Error(`reservations still held by jobs of kind ${kinds.join(", ")}`);
    });
    const counters = await harness.db.quotaUsage.findMany({ where: { userId } });
    for (const row of counters) expect(row.reserved, row.kind).toBe(0n);

    console.info(
      `[chaos ${CHAOS_FULL ? "full" : "shortened"}] provider faults: ${jobs.length} jobs, ` +
        `${server.requests.length} provider requests, ${calls.length} recorded calls, all terminal after ` +
        `${finishedAfterMs} ms\n${Object.entries(summary)
          .map(([kind, line]) => `  ${kind}: ${line}`)
          .join("\n")}`,
    );
  });
});
