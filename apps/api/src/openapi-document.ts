import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecretBox, parseKeyRing } from "@genq/core";
import { createPrismaClient } from "@genq/db";
import { GenqMetrics } from "@genq/metrics";
import { JobQueues } from "@genq/queue";
import { QuotaLedger, resolvePlans } from "@genq/quota";
import { createStorage } from "@genq/storage";
import { Redis } from "ioredis";
import { buildApp } from "./app.ts";

/** The OpenAPI document as `@fastify/swagger` prints it. */
export type OpenApiDocument = Record<string, unknown> & {
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown> };
};

/**
 * Builds the API with every optional route on (metrics, local assets, provider keys, quotas)
 * and returns its OpenAPI document. Nothing is connected: Redis connects lazily, Postgres on
 * the first query, and neither is asked for anything, so no live service is needed.
 */
export async function buildOpenApiDocument(): Promise<OpenApiDocument> {
  const db = createPrismaClient({ connectionString: "postgresql://contract@127.0.0.1:1/contract" });
  const redis = new Redis({
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  const storage = createStorage({
    driver: "local",
    directory: join(tmpdir(), "genq-contract"),
    signingSecret: "contract-only-signing-secret-0123456789",
    publicBaseUrl: "http://localhost/v1/assets",
  });
  const app = await buildApp({
    db,
    redis,
    queues: new JobQueues({ connection: redis }),
    logger: false,
    admin: { user: "operator", password: "contract-only-password" },
    metrics: new GenqMetrics({ process: "api", defaultMetrics: false }),
    quota: new QuotaLedger({ db, plans: resolvePlans(undefined) }),
    storage,
    secretBox: createSecretBox(parseKeyRing(`k1:${Buffer.alloc(32).toString("base64")}`)),
  });
  try {
    await app.ready();
    return JSON.parse(JSON.stringify(app.swagger())) as OpenApiDocument;
  } finally {
    await app.close();
    redis.disconnect();
    await db.$disconnect();
  }
}
