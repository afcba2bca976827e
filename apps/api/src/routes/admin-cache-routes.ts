import { clearResultCache } from "@genq/providers";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import { ErrorResponse } from "./error-response.ts";

/** `POST /v1/admin/cache/clear`: empties the result cache of every worker. */
export async function adminCacheRoutes(app: FastifyInstance, options: OperatorCredentials): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const { redis, queues } = app.genq;

  routes.post(
    "/cache/clear",
    {
      schema: {
        operationId: "clearResultCache",
        tags: ["admin"],
        summary: "Empty the result cache",
        description:
          "Deletes every cached result from Redis and tells every worker to drop its in-memory entries. Jobs submitted afterwards call their provider again.",
        security: [{ operator: [] }],
        response: {
          200: z.object({ cleared: z.number().int().describe("cached results deleted from Redis") }),
          401: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      const cleared = await clearResultCache(redis, queues.prefix);
      request.log.info({ cleared }, "result cache cleared by an operator");
      return { cleared };
    },
  );
}
