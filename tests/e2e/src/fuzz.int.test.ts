import { randomBytes } from "node:crypto";
import { buildApp } from "@genq/api";
import { createSecretBox, parseKeyRing } from "@genq/core";
import { readRouterCatalog } from "@genq/providers";
import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FuzzContext, heavyRequests, requestArbitrary } from "./fuzz/request-arbitrary.ts";
import { failureMessage, fuzzStats, problemsOf, type Secrets, send } from "./fuzz/response-check.ts";
import { catalogRoutes, type FuzzRoute } from "./fuzz/route-catalog.ts";
import { schemaResolver, validish } from "./fuzz/schema-arbitrary.ts";
import { ADMIN, HARNESS_LOGIN_LIMITS, Harness, waitUntil } from "./harness.ts";

/** Generated requests per route; `GENQ_FUZZ_RUNS=2000` for a long run. */
const RUNS = Number(process.env.GENQ_FUZZ_RUNS ?? 80);
/** Fixed by `GENQ_FUZZ_SEED` to replay a run; printed either way. */
const SEED = Number(process.env.GENQ_FUZZ_SEED ?? (Date.now() ^ randomBytes(4).readUInt32LE()) >>> 0);
const BODY_LIMIT_BYTES = 1024 * 1024;

/** Routes every genq API has; the test fails if the enumeration misses one, so it cannot fuzz nothing. */
const CORE_ROUTES = [
  "GET /health/live",
  "GET /health/ready",
  "POST /v1/jobs",
  "GET /v1/jobs",
  "GET /v1/jobs/:id",
  "POST /v1/jobs/:id/cancel",
  "GET /v1/usage",
  "POST /v1/uploads",
  "GET /v1/uploads/:id",
  "POST /v1/provider-keys",
  "GET /v1/provider-keys",
  "DELETE /v1/provider-keys/:provider",
  "GET /v1/assets/*",
  "GET /v1/admin/usage",
  "POST /v1/admin/users",
  "GET /v1/admin/users",
  "PATCH /v1/admin/users/:id",
  "POST /v1/admin/api-keys/:idOrPrefix/revoke",
  "GET /metrics",
  "GET /admin/queues",
];

/**
 * Routes the harness builds without the dependency they need, answering 503 by
 * design ("Absent: those routes answer 503"); they are fuzzed again on an app
 * that has it, where a 503 fails.
 */
const NEEDS_SECRET_BOX = (route: FuzzRoute) =>
  route.path.startsWith("/v1/provider-keys") || route.path.startsWith("/v1/admin/providers");

/** Fewer runs for Bull Board's routes: a third-party UI, behind the operator's credentials. */
function runsFor(route: FuzzRoute): number {
  return route.kind === "bull-board" ? Math.max(10, Math.round(RUNS / 4)) : RUNS;
}

describe("fuzzing every API route", () => {
  const harness = new Harness();
  let byoApp: FastifyInstance;
  let routes: FuzzRoute[];
  let unresolved: string[];
  let context: FuzzContext;
  let secrets: Secrets;

  beforeAll(async () => {
    // A worker publishes the provider catalog that /v1/admin/providers and /v1/provider-keys read.
    await harness.start();
    await waitUntil(
      async () => (await readRouterCatalog(harness.redis, harness.prefix)) !== undefined,
      30_000,
    );
    const fuzzer = await harness.createUser();
    const victim = await harness.createUser();
    const ownJob = (await harness.submit(fuzzer.apiKey, { type: "text", input: { prompt: "mine" } })).json();
    const foreignJob = (
      await harness.submit(victim.apiKey, { type: "text", input: { prompt: "theirs" } })
    ).json();
    const victimKeys = await harness.accounts.listApiKeys(victim.userId);
    const catalog = catalogRoutes(harness.app);
    routes = catalog.routes;
    unresolved = catalog.unresolved;
    const resolve = schemaResolver(catalog.schemas);
    // Resources of the fuzzing user on every collection route (batches, webhook endpoints, ...),
    // made from each route's own schema, so ids reach past the 404 of routes added later too.
    const ownIds = [ownJob.id as string];
    for (const route of routes) {
      if (route.method !== "POST" || route.body === undefined || route.auth !== "api-key") continue;
      if (route.path.includes(":")) continue;
      for (const body of fc.sample(validish(route.body, resolve), { seed: SEED, numRuns: 15 })) {
        const response = await harness.app.inject({
          method: "POST",
          url: route.path,
          headers: { authorization: `Bearer ${fuzzer.apiKey}` },
          payload: body as Record<string, unknown>,
        });
        const id = response.statusCode < 300 ? (response.json() as { id?: unknown }).id : undefined;
        if (typeof id === "string") ownIds.push(id);
      }
    }
    context = {
      apiKey: fuzzer.apiKey,
      operatorAuthorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`,
      ownIds,
      // The victim's user id and key ids: operator routes act on them (never on the fuzzer, whose key must keep working).
      foreignIds: [foreignJob.id, victim.userId, ...victimKeys.map((key) => key.id)],
      operatorValues: [
        ...victimKeys.map((key) => key.prefix),
        ...harness.queues.all().map((queue) => queue.name),
        "mock",
        "latest",
        "completed",
        "failed",
        "waiting",
      ],
      resolve,
      bodyLimitBytes: BODY_LIMIT_BYTES,
    };
    secrets = { values: [fuzzer.apiKey, victim.apiKey, ADMIN.password] };
    byoApp = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      quota: harness.quota,
      storage: harness.storage,
      logger: false,
      admin: { ...ADMIN, loginLimits: HARNESS_LOGIN_LIMITS },
      secretBox: createSecretBox(parseKeyRing(`k1:${randomBytes(32).toString("base64")}`)),
      // Production's default: keys are served from the per-process cache.
      apiKeyCacheTtlMs: 30_000,
    });
    await byoApp.ready();
    process.stdout.write(`fuzz: the fuzzing user owns ${ownIds.length} resources made through the API\n`);
    process.stdout.write(`fuzz: seed ${SEED} (GENQ_FUZZ_SEED=${SEED} replays it), ${RUNS} runs per route\n`);
  });

  afterAll(async () => {
    await byoApp?.close();
    await harness.close();
    const statuses = [...fuzzStats.byStatus.entries()].sort(([a], [b]) => a - b);
    process.stdout.write(
      `fuzz: ${fuzzStats.requests} requests; statuses ${statuses.map(([status, count]) => `${status}×${count}`).join(" ")}\n`,
    );
    for (const [name, count] of fuzzStats.allowed503)
      process.stdout.write(`fuzz: ${name} answered 503 ${count}× without its dependency (by design)\n`);
  });

  it("enumerates every route, the core ones included", () => {
    const names = new Set(routes.map((route) => `${route.method} ${route.path}`));
    for (const core of CORE_ROUTES) expect(names, core).toContain(core);
    expect(unresolved).toEqual([]);
    process.stdout.write(`fuzz: ${routes.length} routes\n${[...names].join("\n")}\n`);
  });

  /** Runs the property for one route on one app; returns the failure, if any. */
  async function fuzzRoute(
    app: FastifyInstance,
    route: FuzzRoute,
    allow503: boolean,
  ): Promise<string | undefined> {
    const result = await fc.check(
      fc.asyncProperty(requestArbitrary(route, context), async (request) => {
        const response = await send(app, request);
        const problems = problemsOf(route, request, response, secrets).filter(
          (problem) =>
            !(
              allow503 &&
              problem === "status 503" &&
              (request.method === "HEAD" || response.body.includes('"code":"service_unavailable"'))
            ),
        );
        if (problems.length > 0) throw new Error(failureMessage(route, request, response, problems));
        if (response.statusCode === 503) {
          const name = `${route.method} ${route.path}`;
          fuzzStats.allowed503.set(name, (fuzzStats.allowed503.get(name) ?? 0) + 1);
        }
      }),
      { numRuns: runsFor(route), seed: SEED, endOnFailure: true },
    );
    if (!result.failed) return undefined;
    const error =
      result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    return `${error}\n(replay: GENQ_FUZZ_SEED=${result.seed}, fast-check path ${result.counterexamplePath})`;
  }

  it("answers thousands of generated bad requests without a 5xx, each error with a code", async () => {
    const failures: string[] = [];
    for (const route of routes) {
      const before = fuzzStats.requests;
      const byo = NEEDS_SECRET_BOX(route);
      const failure = await fuzzRoute(harness.app, route, byo);
      if (failure !== undefined) failures.push(failure);
      if (failure !== undefined) process.stdout.write(`fuzz: FAILURE ${failure.slice(0, 3_000)}\n`);
      if (byo) {
        const again = await fuzzRoute(byoApp, route, false);
        if (again !== undefined) failures.push(`(with a secret box) ${again}`);
      }
      process.stdout.write(
        `fuzz: ${route.method} ${route.path}: ${fuzzStats.requests - before} requests${failure === undefined ? "" : " FAILED"}\n`,
      );
      // The server still answers between routes.
      const live = await harness.app.inject({ method: "GET", url: "/health/live" });
      expect(live.statusCode).toBe(200);
    }
    expect(failures, failures.join("\n\n")).toEqual([]);
  }, 600_000);

  it("answers deep, huge and badly encoded bodies on every route with a 4xx, never a crash", async () => {
    const failures: string[] = [];
    for (const route of routes) {
      if (!["POST", "PUT", "PATCH", "DELETE"].includes(route.method)) continue;
      const app = NEEDS_SECRET_BOX(route) ? byoApp : harness.app;
      for (const request of heavyRequests(route, context)) {
        const response = await send(app, request);
        const problems = problemsOf(route, request, response, secrets);
        if (problems.length > 0) failures.push(failureMessage(route, request, response, problems));
        if (problems.length > 0 && failures.length <= 5)
          process.stdout.write(`fuzz: FAILURE ${failureMessage(route, request, response, problems)}\n`);
      }
    }
    expect(failures, failures.join("\n\n")).toEqual([]);
    const live = await harness.app.inject({ method: "GET", url: "/health/live" });
    expect(live.statusCode).toBe(200);
  }, 300_000);

  it.each([
    ["a malformed percent-encoding", "/v1/jobs/%ZZ", 400],
    ["an encoded lone surrogate", "/v1/jobs/%ED%A0%80", 400],
    ["a path segment over the router's length limit", `/v1/jobs/${"x".repeat(10_000)}`, 400],
  ])("answers %s in the path with a coded error, not the router's own body", async (_name, url, status) => {
    const response = await harness.app.inject({
      method: "GET",
      url,
      headers: { authorization: `Bearer ${context.apiKey}` },
    });
    expect(response.statusCode).toBe(status);
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(response.headers["x-request-id"]).toBeTypeOf("string");
    expect(response.json().error).toMatchObject({ code: "invalid_request", message: expect.any(String) });
  });

  it("gives Bull Board's own errors a genq code and message, keeping its key", async () => {
    const response = await harness.app.inject({
      method: "GET",
      url: "/admin/queues/api/queues/no-such-queue/metrics",
      headers: { authorization: context.operatorAuthorization },
    });
    expect(response.statusCode).toBe(404);
    expect(response.json().error).toEqual({
      key: "ERRORS.QUEUE_NOT_FOUND",
      code: "not_found",
      message: "queue not found",
    });
  });

  it("refuses a NUL character sent to Bull Board with 400 instead of its 500", async () => {
    const response = await harness.app.inject({
      method: "POST",
      url: `/admin/queues/api/queues/${harness.queues.all()[0]?.name}/add`,
      headers: { authorization: context.operatorAuthorization, "content-type": "application/json" },
      payload: JSON.stringify("\u0000"),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe("invalid_request");
  });

  it("still answers /health/live and authenticates the fuzzing user afterwards", async () => {
    expect((await harness.app.inject({ method: "GET", url: "/health/live" })).statusCode).toBe(200);
    const response = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${context.apiKey}` },
    });
    expect(response.statusCode).toBe(200);
    expect(fuzzStats.requests).toBeGreaterThan(routes.length * 10);
  });
});
