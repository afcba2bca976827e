import { GenqError, NotFoundError } from "@genq/core";
import { providerHealth, RedisRouterState, readRouterCatalog } from "@genq/providers";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type OperatorCredentials, requireOperator } from "../plugins/operator-auth.ts";
import { ErrorResponse } from "./error-response.ts";

const Limits = z.object({
  rpm: z.number().optional(),
  tpm: z.number().optional(),
  rpd: z.number().optional(),
});

const ModelHealth = z.object({
  model: z.string(),
  capabilities: z.array(z.string()),
  zeroCost: z.boolean(),
  circuit: z.enum(["closed", "open", "half-open"]),
  circuitOpenUntil: z.string().optional().describe("when an open circuit half-opens"),
  inFlight: z.number(),
  p50LatencyMs: z.number().optional(),
  p95LatencyMs: z.number().optional(),
  ewmaLatencyMs: z.number().optional(),
  calls: z.number().describe("calls in the recent sample window"),
  errors: z.number(),
  errorRate: z.number().describe("errors ÷ calls over the recent sample window; 0 without calls"),
  lastError: z.object({ code: z.string(), message: z.string(), at: z.string() }).optional(),
});

const KeyHealth = z.object({
  id: z.string(),
  hint: z.string().describe("a masked hint of the secret; the secret itself is never returned"),
  priority: z.number(),
  limits: Limits,
  state: z.enum(["ok", "cooling", "exhausted"]),
  until: z
    .string()
    .optional()
    .describe(
      "when a cooling key returns to rotation, or when the next call may probe an exhausted key (a success puts it back)",
    ),
  reason: z.string().optional(),
  requestsLastMinute: z.number(),
  tokensLastMinute: z.number(),
  requestsToday: z.number(),
});

const ProvidersReport = z.object({
  version: z.string().describe("the configuration version the workers published"),
  priceVersion: z.string(),
  defaultRoute: z.string(),
  publishedAt: z.string(),
  providers: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      acceptsUserKeys: z.boolean().describe("whether users may run jobs here on their own keys"),
      models: z.array(ModelHealth),
      keys: z.array(KeyHealth),
    }),
  ),
  routes: z.array(
    z.object({
      name: z.string(),
      strategy: z.string(),
      targets: z.array(
        z.object({ provider: z.string(), model: z.string(), weight: z.number(), tier: z.number() }),
      ),
    }),
  ),
});

const KeyParams = z.object({ provider: z.string().min(1).max(200), keyId: z.string().min(1).max(200) });

const iso = (epochMs: number | undefined) =>
  epochMs === undefined ? {} : { at: new Date(epochMs).toISOString() };

/**
 * Operator routes for the provider layer (HTTP Basic, like Bull Board): health
 * per provider/model and key, and putting an exhausted key back into rotation.
 * They read what the workers publish to Redis; the API holds no provider keys.
 */
export async function adminProviderRoutes(app: FastifyInstance, options: OperatorCredentials): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const routes = app.withTypeProvider<ZodTypeProvider>();
  // One instance: it defines its Lua scripts on the connection once.
  const routerState = new RedisRouterState({
    redis: app.genq.redis,
    prefix: app.genq.queues.prefix,
    // Only read here; the workers apply their configured policy.
    breaker: () => ({ failureThreshold: 1, windowMs: 1, openMs: 1, halfOpenProbes: 1, keyRetryMs: 1 }),
  });

  async function catalogOrThrow() {
    const catalog = await readRouterCatalog(app.genq.redis, app.genq.queues.prefix);
    if (catalog === undefined) {
      throw new GenqError(
        "service_unavailable",
        "no worker has published its provider configuration yet; start a worker",
      );
    }
    return catalog;
  }

  routes.get(
    "/providers",
    {
      schema: {
        operationId: "listProviders",
        tags: ["admin"],
        summary: "Provider health: circuits, in-flight calls, latency, errors and key states",
        security: [{ operator: [] }],
        response: { 200: ProvidersReport, 401: ErrorResponse, 503: ErrorResponse },
      },
    },
    async () => {
      const catalog = await catalogOrThrow();
      const health = await providerHealth(catalog, routerState);
      return {
        version: catalog.version,
        priceVersion: catalog.priceVersion,
        defaultRoute: catalog.defaultRoute,
        publishedAt: catalog.publishedAt,
        routes: catalog.routes,
        providers: health.map((provider) => ({
          name: provider.name,
          type: provider.type,
          acceptsUserKeys: provider.acceptsUserKeys,
          models: provider.models.map(({ provider: _provider, circuitOpenUntil, lastError, ...model }) => ({
            ...model,
            ...(circuitOpenUntil === undefined
              ? {}
              : { circuitOpenUntil: new Date(circuitOpenUntil).toISOString() }),
            ...(lastError === undefined ? {} : { lastError }),
            errorRate: model.calls === 0 ? 0 : model.errors / model.calls,
          })),
          keys: provider.keys.map(({ provider: _provider, keyId, until, ...key }) => ({
            ...key,
            id: keyId,
            ...(until === undefined ? {} : { until: iso(until).at }),
          })),
        })),
      };
    },
  );

  routes.post(
    "/providers/:provider/keys/:keyId/reset",
    {
      schema: {
        operationId: "resetProviderKey",
        tags: ["admin"],
        summary:
          "Put a key that is out of credit, failed authentication or is cooling down back into rotation",
        security: [{ operator: [] }],
        params: KeyParams,
        response: { 204: z.null(), 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const catalog = await catalogOrThrow();
      const { provider, keyId } = request.params;
      const known = catalog.providers.some(
        (candidate) => candidate.name === provider && candidate.keys.some((key) => key.id === keyId),
      );
      if (!known) throw new NotFoundError("provider key", `${provider}/${keyId}`);
      await routerState.resetKey(provider, keyId);
      request.log.info({ provider, keyId }, "provider key reset by an operator");
      return reply.status(204).send(null);
    },
  );
}
