import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, Harness } from "./harness.ts";

/** The value of one sample line `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (wanted.every((part) => line.includes(part))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

describe("Prometheus metrics", () => {
  let harness: Harness;
  let apiKey: string;

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
    // Professional: `high` is not available on the basic plan.
    ({ apiKey } = await harness.createUser(undefined, "professional"));
  });
  afterAll(async () => harness.close());

  it("counts requests by route pattern and status, accepted jobs, and reports queue depth at scrape time", async () => {
    for (let index = 0; index < 3; index += 1) {
      expect(
        (await harness.submit(apiKey, { type: "text", priority: "high", input: { prompt: `m${index}` } }))
          .statusCode,
      ).toBe(202);
    }
    await harness.submit(apiKey, { type: "text", input: {} });
    const unknown = "0190a3b4-0000-7000-8000-000000000000";
    await harness.app.inject({
      method: "GET",
      url: `/v1/jobs/${unknown}`,
      headers: { authorization: `Bearer ${apiKey}` },
    });

    const response = await harness.app.inject({ method: "GET", url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    const text = response.body;
    expect(
      sample(text, "genq_http_requests_total", { route: "/v1/jobs", method: "POST", status: "202" }),
    ).toBe(3);
    expect(
      sample(text, "genq_http_requests_total", { route: "/v1/jobs", method: "POST", status: "400" }),
    ).toBe(1);
    // Ids never become label values: the route pattern is the label.
    expect(sample(text, "genq_http_requests_total", { route: "/v1/jobs/:id", status: "404" })).toBe(1);
    expect(text).not.toContain(unknown);
    expect(sample(text, "genq_jobs_accepted_total", { type: "text", priority: "high" })).toBe(3);
    // No worker runs, so the three jobs wait (prioritized: they have a priority).
    const waiting =
      (sample(text, "genq_queue_jobs", { queue: "text", state: "prioritized" }) ?? 0) +
      (sample(text, "genq_queue_jobs", { queue: "text", state: "waiting" }) ?? 0);
    expect(waiting).toBe(3);
    expect(sample(text, "genq_queue_oldest_waiting_seconds", { queue: "text" })).toBeGreaterThanOrEqual(0);
    expect(text).toContain("genq_http_request_duration_seconds_bucket");
  });

  it("exposes the worker's job, provider and circuit figures on its health port", async () => {
    const port = await freePort();
    await harness.startInProcessWorker({ GENQ_WORKER_HEALTH_PORT: String(port) });
    const job = (await harness.submit(apiKey, { type: "text", input: { prompt: "measured" } })).json();
    expect((await harness.waitForJob(apiKey, job.id)).status).toBe("completed");

    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(
      sample(text, "genq_provider_calls_total", { provider: "mock", model: "mock-1", outcome: "ok" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, "genq_jobs_finished_total", { type: "text", outcome: "completed" }),
    ).toBeGreaterThanOrEqual(1);
    expect(text).toContain("genq_job_wait_seconds_bucket");
    expect(sample(text, "genq_circuit_open", { provider: "mock", model: "mock-1", state: "open" })).toBe(0);
    expect(text).toContain('process="worker"');
  });
});
