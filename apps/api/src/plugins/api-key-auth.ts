import { GenqError } from "@genq/core";
import type { Principal } from "@genq/db";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fastifyPlugin from "fastify-plugin";
import { ApiKeyCache, apiKeyCacheOf } from "../api-key-cache.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated caller; set on every /v1 route. */
    principal: Principal;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Options for {@link apiKeyAuthPlugin}. */
export interface ApiKeyAuthOptions {
  /**
   * How long a resolved API key is trusted without asking Postgres (evicted at once in
   * every process on revocation through the admin API); 0 or absent asks on every request.
   */
  cacheTtlMs?: number | undefined;
}

/** Reads the caller's API key from `Authorization: Bearer <key>`. */
async function authenticate(
  app: FastifyInstance,
  cache: ApiKeyCache,
  request: FastifyRequest,
): Promise<void> {
  const header = request.headers.authorization;
  if (header === undefined) {
    throw new GenqError("unauthorized", "missing API key: send `Authorization: Bearer <api key>`");
  }
  const match = BEARER.exec(header);
  if (match?.[1] === undefined) {
    throw new GenqError("unauthorized", "malformed Authorization header: expected `Bearer <api key>`");
  }
  const secret = match[1];
  const principal = await cache.resolve(secret, () => app.genq.accounts.authenticate(secret));
  if (principal === null) {
    throw new GenqError("unauthorized", "the API key is unknown, revoked, or its user is disabled");
  }
  request.principal = principal;
  request.log = request.log.child({ userId: principal.userId });
}

/**
 * Requires an API key on every route of the scope it is registered in. Resolved
 * keys are cached per process for a short while; the admin routes evict them in
 * every API process when a key is revoked or its user changes.
 */
export const apiKeyAuthPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: ApiKeyAuthOptions) => {
    // One cache per server, shared by every scope that requires a key (/v1, /openai/v1): an
    // eviction (a revoked key) must reach the cache each scope reads.
    let cache = apiKeyCacheOf(app.server);
    if (cache === undefined) {
      const created = new ApiKeyCache({
        redis: app.genq.redis,
        prefix: app.genq.queues.prefix,
        ttlMs: options.cacheTtlMs ?? 0,
        log: app.log,
      });
      created.attach(app.server);
      app.addHook("onClose", () => created.close());
      await created.ready();
      cache = created;
    }
    const shared = cache;
    app.decorateRequest("principal", undefined as unknown as Principal);
    app.addHook("onRequest", async (request) => authenticate(app, shared, request));
  },
  { name: "genq-api-key-auth", dependencies: ["genq-resources"] },
);
