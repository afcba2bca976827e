import { Writable } from "node:stream";
import { buildApp } from "@genq/api";
import { loggerOptions } from "@genq/core";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, runCli } from "./harness.ts";

describe("operations: logs, CLI and start-up checks", () => {
  const harness = new Harness();
  beforeAll(() => harness.start({ startWorker: false }));
  afterAll(() => harness.close());

  it("never writes an API key or operator password to the request logs", async () => {
    const { apiKey } = await harness.createUser();
    let logged = "";
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    const logger = pino({ ...loggerOptions({ name: "test", level: "debug", pretty: false }) }, sink);
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger,
      admin: ADMIN,
    });
    const basic = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;
    await app.inject({ method: "GET", url: "/v1/jobs", headers: { authorization: `Bearer ${apiKey}` } });
    await app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: "Bearer gq_wrong_key_value" },
    });
    await app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: basic } });
    await app.close();
    expect(logged).toContain("request completed");
    expect(logged).not.toContain(apiKey);
    expect(logged).not.toContain(apiKey.split("_")[2]);
    expect(logged).not.toContain("gq_wrong_key_value");
    expect(logged).not.toContain(basic.slice(6));
  });

  it("creates a user with the CLI and prints its key once, which then authenticates", async () => {
    const result = await runCli(["users", "create", "cli-user@example.com", "--plan", "professional"], {
      DATABASE_URL: harness.database.url,
    });
    expect(result.code).toBe(0);
    const apiKey = /api key: (\S+)/.exec(result.output)?.[1];
    expect(apiKey).toMatch(/^gq_[A-Za-z0-9]{8}_/);
    const response = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(response.statusCode).toBe(200);
    const stored = await harness.db.apiKey.findFirstOrThrow({ where: { prefix: apiKey!.slice(0, 11) } });
    expect(stored.secretHash).not.toContain(apiKey!.slice(12));

    const revoked = await runCli(["keys", "revoke", stored.prefix], { DATABASE_URL: harness.database.url });
    expect(revoked.code).toBe(0);
    const after = await harness.app.inject({
      method: "GET",
      url: "/v1/jobs",
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(after.statusCode).toBe(401);
  });

  it("refuses a bad plan and an unknown command with usage errors", async () => {
    const badPlan = await runCli(["users", "create", "x@example.com", "--plan", "gold"], {
      DATABASE_URL: harness.database.url,
    });
    expect(badPlan.code).toBe(2);
    expect(badPlan.output).toContain("--plan must be one of basic, professional, enterprise");
    const unknown = await runCli(["frobnicate"], { DATABASE_URL: harness.database.url });
    expect(unknown.code).toBe(2);
  });

  it("stops at start-up with a message naming an unreachable Redis", async () => {
    const result = await runCli(["start"], {
      REDIS_URL: "redis://:hunter2@127.0.0.1:1",
      DATABASE_URL: harness.database.url,
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain("Cannot reach Redis at redis://:***@127.0.0.1:1");
    expect(result.output).toContain("docker compose up -d redis");
    expect(result.output).not.toContain("hunter2");
  });

  it("stops at start-up with a message naming an unreachable PostgreSQL", async () => {
    const result = await runCli(["migrate"], {
      DATABASE_URL: "postgresql://postgres:hunter2@127.0.0.1:1/genq",
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain("Cannot reach PostgreSQL at postgresql://postgres:***@127.0.0.1:1/genq");
    expect(result.output).not.toContain("hunter2");
  });

  it("names a bad environment variable instead of starting", async () => {
    const result = await runCli(["migrate"], { REDIS_URL: "localhost:6379" });
    expect(result.code).toBe(1);
    expect(result.output).toContain("REDIS_URL: must be a redis:// or rediss:// URL");
  });
});
