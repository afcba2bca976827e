import { Writable } from "node:stream";
import { buildApp } from "@genq/api";
import { loggerOptions } from "@genq/core";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

describe("request logs", () => {
  let harness: Harness;
  let app: FastifyInstance;
  const lines: string[] = [];

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
    // The API's own logger options (as main.ts builds them), writing into `lines`.
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      storage: harness.storage,
      admin: ADMIN,
      logger: pino(loggerOptions({ name: "genq-api", level: "info", pretty: false }), stream),
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await harness.close();
  });

  it("never hold a signed asset link's signature", async () => {
    await harness.storage.put("images/job-log/0.png", Buffer.from("png"), { contentType: "image/png" });
    const link = new URL(
      await harness.storage.signedGetUrl("images/job-log/0.png", { expiresInSeconds: 60 }),
    );
    const signature = link.searchParams.get("signature") ?? "";
    expect(signature.length).toBeGreaterThan(20);

    lines.length = 0;
    const response = await app.inject({ method: "GET", url: `${link.pathname}${link.search}` });
    expect(response.statusCode).toBe(200);

    const logged = lines.join("");
    expect(logged).toContain("/v1/assets/images/job-log/0.png?expires=");
    expect(logged).toContain("signature=[redacted]");
    expect(logged).not.toContain(signature);
  });

  it("never hold an S3 presigned URL's signature, credential or session token", async () => {
    const secrets = ["f00dfeedsignature0123456789", "AKIAEXAMPLE%2F20261203", "IQoJsessiontoken"];
    lines.length = 0;
    await app.inject({
      method: "GET",
      url: `/v1/assets/images/x.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${secrets[1]}&X-Amz-Signature=${secrets[0]}&X-Amz-Security-Token=${secrets[2]}`,
    });
    await app.inject({ method: "GET", url: `/not-a-route?X-Amz-Signature=${secrets[0]}` });

    const logged = lines.join("");
    expect(logged).toContain("X-Amz-Algorithm=AWS4-HMAC-SHA256");
    expect(logged).toContain("X-Amz-Signature=[redacted]");
    for (const secret of secrets) expect(logged).not.toContain(secret);
  });
});
