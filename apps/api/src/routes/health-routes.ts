import { pingDatabase } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";

const CHECK_TIMEOUT_MS = 2_000;

/** "ok" or "unavailable"; the reason goes to the log, not to unauthenticated callers. */
async function check(
  app: FastifyInstance,
  name: string,
  probe: () => Promise<unknown>,
): Promise<"ok" | "unavailable"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return "ok";
  } catch (error) {
    app.log.warn({ err: error, check: name }, "readiness check failed");
    return "unavailable";
  } finally {
    clearTimeout(timer);
  }
}

const Health = z
  .object({
    status: z.enum(["ok", "unavailable"]),
    checks: z
      .record(z.string(), z.enum(["ok", "unavailable"]))
      .optional()
      .describe("Each backing service's state (readiness only)"),
  })
  .meta({
    id: "Health",
    examples: [{ status: "ok", checks: { redis: "ok", postgres: "ok" } }],
  });

/** `/health/live` (the process answers) and `/health/ready` (Redis and Postgres answer). */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get(
    "/health/live",
    {
      schema: {
        operationId: "getLiveness",
        summary: "Liveness: the process answers",
        tags: ["health"],
        // Probes carry no credentials: no authentication, here and in the document.
        security: [],
        response: { 200: Health },
      },
    },
    async () => ({ status: "ok" as const }),
  );
  routes.get(
    "/health/ready",
    {
      schema: {
        operationId: "getReadiness",
        summary: "Readiness: Redis and Postgres answer",
        tags: ["health"],
        security: [],
        response: { 200: Health, 503: Health },
        responseDescriptions: { 503: "Redis or Postgres does not answer (`checks` says which)" },
      },
    },
    async (_request, reply) => {
      const [redis, postgres] = await Promise.all([
        check(app, "redis", () => app.genq.redis.ping()),
        check(app, "postgres", () => pingDatabase(app.genq.db)),
      ]);
      const ok = redis === "ok" && postgres === "ok";
      return reply
        .status(ok ? 200 : 503)
        .send({ status: ok ? "ok" : "unavailable", checks: { redis, postgres } });
    },
  );
}
