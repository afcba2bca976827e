import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

/** The JSON text `{"x":{"x":...{}}}`, `depth` levels deep (too deep for JSON.stringify). */
function nested(depth: number): string {
  return `${'{"x":'.repeat(depth)}{}${"}".repeat(depth)}`;
}

describe("API validation, limits and operator surfaces", () => {
  const harness = new Harness();
  let apiKey: string;

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    ({ apiKey } = await harness.createUser());
  });
  afterAll(() => harness.close());

  const valid = { type: "text", input: { prompt: "hi" } };
  const cases: Array<[string, unknown, string]> = [
    ["a missing type", { input: { prompt: "hi" } }, "type"],
    ["an unknown type", { ...valid, type: "video" }, "type"],
    ["a missing input", { type: "text" }, "input"],
    [
      "both prompt and messages",
      { type: "text", input: { prompt: "a", messages: [{ role: "user", content: "b" }] } },
      "input.messages",
    ],
    ["neither prompt nor messages", { type: "text", input: {} }, "input.prompt"],
    ["an empty prompt", { type: "text", input: { prompt: "" } }, "input.prompt"],
    [
      "a bad message role",
      { type: "text", input: { messages: [{ role: "robot", content: "b" }] } },
      "input.messages.0.role",
    ],
    ["a temperature above 2", { type: "text", input: { prompt: "a", temperature: 5 } }, "input.temperature"],
    ["a zero maxTokens", { type: "text", input: { prompt: "a", maxTokens: 0 } }, "input.maxTokens"],
    ["a fractional maxTokens", { type: "text", input: { prompt: "a", maxTokens: 1.5 } }, "input.maxTokens"],
    ["an unknown priority", { ...valid, priority: "asap" }, "priority"],
    ["a malformed provider name", { ...valid, provider: "Open AI!" }, "provider"],
    ["an unknown top-level field", { ...valid, colour: "blue" }, "(root)"],
    ["an unknown input field", { type: "text", input: { prompt: "a", temprature: 1 } }, "input"],
    ["metadata that is not an object", { ...valid, metadata: "x" }, "metadata"],
    ["metadata over 16 KiB", { ...valid, metadata: { blob: "x".repeat(17_000) } }, "metadata"],
    ["a NUL character in the prompt", { type: "text", input: { prompt: "a\u0000b" } }, "input.prompt"],
    ["a NUL character in the model", { ...valid, model: "x\u0000" }, "model"],
    ["a NUL character in a metadata key", { ...valid, metadata: { "a\u0000": 1 } }, "metadata.a\u0000"],
    [
      "metadata nested 5,000 levels deep",
      `{"type":"text","input":{"prompt":"a"},"metadata":{"deep":${nested(5_000)}}}`,
      `metadata.deep${".x".repeat(31)}`,
    ],
    [
      "providerOptions nested 100,000 levels deep",
      // latencyMs: an allowed option, so the depth limit (not the allow-list) refuses it.
      `{"type":"text","input":{"prompt":"a","providerOptions":{"mock":{"latencyMs":${nested(100_000)}}}}}`,
      `input.providerOptions.mock.latencyMs${".x".repeat(28)}`,
    ],
  ];

  it.each(cases)("answers 400 invalid_request naming the field for %s", async (_name, body, field) => {
    const response = await harness.submit(apiKey, body);
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe("invalid_request");
    expect(error.details.location).toBe("body");
    expect(error.details.field).toBe(field);
    expect(error.message).toContain(field === "(root)" ? "body" : `body.${field}`);
    expect(JSON.stringify(error)).not.toMatch(/at .*\.ts:\d+/);
    expect(await harness.db.job.count()).toBe(0);
  });

  it("answers 400 for a body that is not JSON", async () => {
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      payload: '{"type": "text", ',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("invalid_request");
  });

  it("answers 415 for a body that is not application/json", async () => {
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "text/csv" },
      payload: "a,b",
    });
    expect(response.statusCode).toBe(415);
    expect(response.json().error.code).toBe("unsupported_media_type");
  });

  it("answers 413 for a body over the limit", async () => {
    const response = await harness.submit(apiKey, {
      type: "text",
      input: { prompt: "x".repeat(2 * 1024 * 1024) },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({
      code: "payload_too_large",
      details: { limitBytes: 1024 * 1024 },
    });
  });

  it("answers 400 for an Idempotency-Key over 255 characters", async () => {
    const response = await harness.submit(apiKey, valid, { "idempotency-key": "k".repeat(300) });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details).toMatchObject({ location: "headers", field: "idempotency-key" });
  });

  it("answers 400 for bad list parameters and 404 for malformed job ids", async () => {
    const headers = { authorization: `Bearer ${apiKey}` };
    for (const query of ["status=done", "limit=1000", "cursor=not-a-cursor", "limit=abc"]) {
      const response = await harness.app.inject({ method: "GET", url: `/v1/jobs?${query}`, headers });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error.code).toBe("invalid_request");
    }
    const malformed = await harness.app.inject({ method: "GET", url: "/v1/jobs/123", headers });
    expect(malformed.statusCode).toBe(404);
    const unknownRoute = await harness.app.inject({ method: "GET", url: "/v1/nothing", headers });
    expect(unknownRoute.statusCode).toBe(404);
    expect(unknownRoute.json().error.code).toBe("not_found");
  });

  it("accepts a job while no worker runs, so it waits queued in Postgres and Redis", async () => {
    const response = await harness.submit(apiKey, {
      type: "text",
      priority: "low",
      input: { prompt: "later" },
    });
    expect(response.statusCode).toBe(202);
    const { id } = response.json();
    expect(await harness.queues.queue("text").getJobState(id)).toBe("prioritized");
    expect((await harness.db.job.findUniqueOrThrow({ where: { id } })).status).toBe("queued");
  });

  it("shows a job's provider calls of every attempt on the job, but not in the list", async () => {
    const { id } = (await harness.submit(apiKey, { type: "text", input: { prompt: "calls" } })).json();
    const rateLimited = {
      seq: 1,
      provider: "openai",
      model: "gpt-4o-mini",
      keyId: "openai-main",
      startedAt: new Date("2026-11-22T10:00:00.000Z"),
      latencyMs: 120,
      outcome: "error" as const,
      errorCode: "rate_limited",
      errorMessage: "429 Too Many Requests",
    };
    // What a worker does: claim, attempt, record; here without a worker, so the calls are known.
    await harness.lifecycle.claim(id);
    await harness.lifecycle.retry(id, { code: "rate_limited", message: "429" }, [rateLimited]);
    await harness.lifecycle.claim(id);
    await harness.lifecycle.fail(id, { code: "credit_exhausted", message: "out of credit" }, [
      { ...rateLimited, outcome: "skipped", latencyMs: 0, errorCode: undefined, errorMessage: undefined },
      { ...rateLimited, seq: 2, provider: "anthropic", model: "claude-haiku", keyId: undefined },
    ]);

    const job = await harness.getJob(apiKey, id);

    expect(job).toMatchObject({ status: "failed", attempts: 2, priceVersion: null });
    expect(job.calls).toEqual([
      {
        attempt: 1,
        seq: 1,
        provider: "openai",
        model: "gpt-4o-mini",
        keyId: "openai-main",
        startedAt: "2026-11-22T10:00:00.000Z",
        latencyMs: 120,
        outcome: "error",
        errorCode: "rate_limited",
        // Users get the code's generic message; the provider's text is in the admin call log.
        errorMessage: "The provider is rate limiting requests; try again later.",
      },
      {
        attempt: 2,
        seq: 1,
        provider: "openai",
        model: "gpt-4o-mini",
        keyId: "openai-main",
        startedAt: "2026-11-22T10:00:00.000Z",
        latencyMs: 0,
        outcome: "skipped",
      },
      {
        attempt: 2,
        seq: 2,
        provider: "anthropic",
        model: "claude-haiku",
        startedAt: "2026-11-22T10:00:00.000Z",
        latencyMs: 120,
        outcome: "error",
        errorCode: "rate_limited",
        // Users get the code's generic message; the provider's text is in the admin call log.
        errorMessage: "The provider is rate limiting requests; try again later.",
      },
    ]);
    const list = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    const listed = list.json().data.find((each: { id: string }) => each.id === id);
    expect(listed).toMatchObject({ id, priceVersion: null });
    expect(listed).not.toHaveProperty("calls");
  });

  it("reports liveness and readiness of Redis and Postgres", async () => {
    expect((await harness.app.inject({ method: "GET", url: "/health/live" })).statusCode).toBe(200);
    const ready = await harness.app.inject({ method: "GET", url: "/health/ready" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ok", checks: { redis: "ok", postgres: "ok" } });
  });

  it("serves an OpenAPI 3.1 document describing the job routes", async () => {
    const response = await harness.app.inject({ method: "GET", url: "/docs/json" });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(["/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/cancel", "/health/ready"]),
    );
    expect(document.paths["/v1/jobs"].post.requestBody).toBeDefined();
    const single = document.paths["/v1/jobs/{id}"].get.responses["200"].content["application/json"].schema;
    expect(single).toEqual({ $ref: "#/components/schemas/JobDetail" });
    expect(Object.keys(document.components.schemas.JobDetail.properties)).toEqual(
      expect.arrayContaining(["calls", "priceVersion", "costMicroUsd"]),
    );
    expect(document.components.schemas.Job.properties).not.toHaveProperty("calls");
    expect(document.components.schemas.Job.properties).toHaveProperty("priceVersion");
    expect((await harness.app.inject({ method: "GET", url: "/docs" })).statusCode).toBeLessThan(400);
  });

  it("protects Bull Board with operator credentials", async () => {
    const anonymous = await harness.app.inject({ method: "GET", url: "/admin/queues" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toContain("Basic");
    const wrong = await harness.app.inject({
      method: "GET",
      url: "/admin/queues",
      headers: { authorization: `Basic ${Buffer.from(`${ADMIN.user}:wrong`).toString("base64")}` },
    });
    expect(wrong.statusCode).toBe(401);
    const userKey = await harness.app.inject({
      method: "GET",
      url: "/admin/queues",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(userKey.statusCode).toBe(401);
    const operator = {
      authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`,
    };
    const page = await harness.app.inject({ method: "GET", url: "/admin/queues", headers: operator });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("<html");
    // Every script and stylesheet the page loads must resolve, as a browser would resolve it.
    const base = /<base href="([^"]+)"/.exec(page.body)?.[1];
    expect(base).toBe("/admin/queues/");
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      const url = new URL(asset, `http://localhost${base}`).pathname;
      const response = await harness.app.inject({ method: "GET", url, headers: operator });
      expect(response.statusCode, url).toBe(200);
    }
    const queues = await harness.app.inject({
      method: "GET",
      url: "/admin/queues/api/queues",
      headers: operator,
    });
    expect(queues.statusCode).toBe(200);
    expect(queues.json().queues.map((queue: { name: string }) => queue.name)).toEqual(
      expect.arrayContaining(["text"]),
    );
  });

  it("echoes a request id", async () => {
    const response = await harness.app.inject({
      method: "GET",
      url: "/health/live",
      headers: { "x-request-id": "req-123" },
    });
    expect(response.headers["x-request-id"]).toBe("req-123");
  });
});
