import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./harness.ts";

/**
 * Fair share for single jobs: every user has an in-flight cap (GENQ_TENANT_CONCURRENCY
 * for basic, ×2 professional, ×4 enterprise), and `urgent`/`high` are reserved to the
 * plans that include them. Here the worker has 6 slots and the base cap is 1, so an
 * enterprise tenant runs at most 4 jobs at once and a basic one at most 1.
 */
const CONCURRENCY = 6;
const BASE_CAP = 1;
const ENTERPRISE_CAP = 4 * BASE_CAP;
const FLOOD = 60;

let harness: Harness;

beforeAll(async () => {
  harness = await new Harness({
    workerEnv: {
      GENQ_TEXT_CONCURRENCY: String(CONCURRENCY),
      GENQ_TENANT_CONCURRENCY: String(BASE_CAP),
      // Each job takes a while, so a flood is still queued when the other tenant submits.
      GENQ_MOCK_LATENCY_MS: "500",
    },
  }).start();
}, 60_000);

afterAll(async () => {
  await harness?.close();
});

/** The most jobs of `jobs` that ran at the same time, from their start and finish times. */
function mostAtOnce(jobs: ReadonlyArray<{ startedAt: Date | null; finishedAt: Date | null }>): number {
  const edges = jobs.flatMap((job) => [
    { at: job.startedAt?.getTime() ?? 0, step: 1 },
    { at: job.finishedAt?.getTime() ?? 0, step: -1 },
  ]);
  // A finish and a start at the same millisecond: the finish goes first.
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let running = 0;
  let most = 0;
  for (const edge of edges) {
    running += edge.step;
    most = Math.max(most, running);
  }
  return most;
}

describe("fair share for single jobs", () => {
  it("starts another tenant's normal job within a bounded number of a tenant's flood of urgent jobs", async () => {
    const flooder = await harness.createUser(undefined, "enterprise");
    const other = await harness.createUser();
    const flood = await Promise.all(
      Array.from({ length: FLOOD }, async (_, index) => {
        const response = await harness.submit(flooder.apiKey, {
          type: "text",
          priority: "urgent",
          input: { prompt: `flood ${index}` },
        });
        expect(response.statusCode).toBe(202);
        return response.json().id as string;
      }),
    );
    const submitted = await harness.submit(other.apiKey, { type: "text", input: { prompt: "my turn" } });
    expect(submitted.statusCode).toBe(202);
    const probe = await harness.waitForJob(other.apiKey, submitted.json().id);
    expect(probe.status).toBe("completed");
    for (const id of flood)
      expect((await harness.waitForJob(flooder.apiKey, id, undefined, 60_000)).status).toBe("completed");

    const [probeRow, floodRows] = await Promise.all([
      harness.db.job.findUniqueOrThrow({ where: { id: submitted.json().id } }),
      harness.db.job.findMany({ where: { id: { in: flood } } }),
    ]);
    // The flooder's jobs that started while the other tenant's job waited.
    const startedWhileWaiting = floodRows.filter(
      (job) =>
        job.startedAt !== null &&
        probeRow.startedAt !== null &&
        job.startedAt > probeRow.createdAt &&
        job.startedAt < probeRow.startedAt,
    ).length;
    // Without caps every queued urgent job of the flood runs first (dozens). With them, the
    // flooder's jobs past its cap are set aside once each (milliseconds, not a run), so only
    // the jobs its finishing ones woke meanwhile start ahead of the other tenant's job.
    expect(startedWhileWaiting).toBeLessThanOrEqual(FLOOD / 4);
    // The flooder never held more than its cap of the worker's slots.
    expect(mostAtOnce(floodRows)).toBeLessThanOrEqual(ENTERPRISE_CAP);
    // Set aside is not an attempt.
    expect(floodRows.every((job) => job.attempts === 1)).toBe(true);
  });

  it("refuses a priority above the plan's with 403, naming the priority and the plan", async () => {
    const basic = await harness.createUser();
    for (const priority of ["urgent", "high"]) {
      const response = await harness.submit(basic.apiKey, {
        type: "text",
        priority,
        input: { prompt: "me first" },
      });
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toMatchObject({
        code: "forbidden",
        details: { field: "priority", priority, plan: "basic" },
      });
      expect(response.json().error.message).toContain(`"${priority}" is not available on the basic plan`);
    }
    const batch = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${basic.apiKey}` },
      payload: { type: "text", priority: "urgent", items: [{ prompt: "a" }] },
    });
    expect(batch.statusCode).toBe(403);
    expect(await harness.db.job.count({ where: { userId: basic.userId } })).toBe(0);

    const professional = await harness.createUser(undefined, "professional");
    expect(
      (await harness.submit(professional.apiKey, { type: "text", priority: "high", input: { prompt: "ok" } }))
        .statusCode,
    ).toBe(202);
    expect(
      (
        await harness.submit(professional.apiKey, {
          type: "text",
          priority: "urgent",
          input: { prompt: "no" },
        })
      ).statusCode,
    ).toBe(403);
  });
});
