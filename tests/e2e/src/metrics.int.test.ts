import { networkInterfaces } from "node:os";
import { buildApp } from "@genq/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, freePort, Harness } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;

/** This machine's first non-loopback IPv4 address: where another host would reach it. */
function externalAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) if (entry.family === "IPv4" && !entry.internal) return entry.address;
  }
  return undefined;
}

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

    const response = await harness.app.inject({
      method: "GET",
      url: "/metrics",
      headers: { authorization: OPERATOR },
    });
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

  it("reports the economy tier's provider batches not ended yet, by provider and status, at scrape time", async () => {
    const created = await harness.app.inject({
      method: "POST",
      url: "/v1/batches",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { type: "text", items: [{ prompt: "at the provider" }] },
    });
    expect(created.statusCode, created.body).toBe(202);
    const batch = created.json() as { id: string };
    const { userId } = await harness.db.batch.findUniqueOrThrow({ where: { id: batch.id } });
    const open = async () => {
      const scraped = await harness.app.inject({
        method: "GET",
        url: "/metrics",
        headers: { authorization: OPERATOR },
      });
      return sample(scraped.body, "genq_provider_batches_open", { provider: "openai", status: "running" });
    };
    // Two provider batches of the batch at OpenAI, as the economy scheduler records them.
    for (const id of ["0190a3b4-0000-7000-8000-0000000000b1", "0190a3b4-0000-7000-8000-0000000000b2"]) {
      await harness.db.$executeRaw`
        INSERT INTO provider_batches (id, batch_id, user_id, provider, model, key_id, status, item_count, updated_at)
        VALUES (${id}::uuid, ${batch.id}::uuid, ${userId}::uuid, 'openai', 'gpt-4o-mini', 'openai', 'running', 1, now())`;
    }
    expect(await open()).toBe(2);
    // Ended: the gauge drops to nothing rather than keeping its last count.
    await harness.db
      .$executeRaw`UPDATE provider_batches SET status = 'ended' WHERE batch_id = ${batch.id}::uuid`;
    expect(await open()).toBeUndefined();
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

  it("refuses /metrics to a client without the operator's credentials or the metrics token", async () => {
    const anonymous = await harness.app.inject({ method: "GET", url: "/metrics" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect(anonymous.body).not.toContain("genq_");
    const token = "metrics-token-0123456789abcdef";
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      metrics: harness.metrics,
      metricsToken: token,
    });
    try {
      const scrape = (authorization: string) =>
        app.inject({ method: "GET", url: "/metrics", headers: { authorization } });
      expect((await scrape(`Bearer ${token}`)).statusCode).toBe(200);
      expect((await scrape(`Bearer ${token}`)).body).toContain("genq_http_requests_total");
      expect((await scrape("Bearer metrics-token-0123456789abcdeX")).statusCode).toBe(401);
      expect((await scrape(OPERATOR)).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("binds the worker's health and metrics server to loopback unless told otherwise", async () => {
    const external = externalAddress();
    expect(external, "this test needs a non-loopback IPv4 interface").toBeDefined();
    const port = await freePort();
    await harness.worker?.close();
    const worker = await harness.startInProcessWorker({ GENQ_WORKER_HEALTH_PORT: String(port) });
    try {
      expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
      // Another host (here: this one through its external address) cannot connect.
      await expect(fetch(`http://${external}:${port}/metrics`)).rejects.toThrow();
    } finally {
      await worker.close();
      harness.worker = undefined;
    }
  });

  it("serves the worker's metrics on every interface when bound there, behind the metrics token", async () => {
    const external = externalAddress();
    const port = await freePort();
    const token = "metrics-token-0123456789abcdef";
    await harness.worker?.close();
    const worker = await harness.startInProcessWorker({
      GENQ_WORKER_HEALTH_PORT: String(port),
      GENQ_WORKER_HEALTH_HOST: "0.0.0.0",
      GENQ_METRICS_TOKEN: token,
    });
    try {
      // Probes need no token; metrics do.
      expect((await fetch(`http://${external}:${port}/health/live`)).status).toBe(200);
      expect((await fetch(`http://${external}:${port}/metrics`)).status).toBe(401);
      const scraped = await fetch(`http://${external}:${port}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('process="worker"');
    } finally {
      await worker.close();
      harness.worker = undefined;
    }
  });
});
