import { pingDatabase } from "@genq/db";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";

const CHECK_TIMEOUT_MS = 2_000;

async function check(probe: () => Promise<unknown>): Promise<"ok" | string> {
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
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

const Health = z.object({
  status: z.enum(["ok", "unavailable"]),
  checks: z.record(z.string(), z.string()).optional(),
});

/** `/health/live` (the process answers) and `/health/ready` (Redis and Postgres answer). */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get("/health/live", { schema: { tags: ["health"], response: { 200: Health } } }, async () => ({
    status: "ok" as const,
  }));
  routes.get(
    "/health/ready",
    { schema: { tags: ["health"], response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const [redis, postgres] = await Promise.all([
        check(() => app.genq.redis.ping()),
        check(() => pingDatabase(app.genq.db)),
      ]);
      const ok = redis === "ok" && postgres === "ok";
      return reply
        .status(ok ? 200 : 503)
        .send({ status: ok ? "ok" : "unavailable", checks: { redis, postgres } });
    },
  );
}
