import fastifyRateLimit from "@fastify/rate-limit";
import { GenqError } from "@genq/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fastifyPlugin from "fastify-plugin";

/** Options for {@link submissionRateLimitPlugin}. */
export interface SubmissionRateLimitOptions {
  /** Requests per API key per minute on each submission route; 0 turns the limit off. */
  perMinute: number;
  /**
   * Every other write in this scope (POST, PUT, PATCH, DELETE: uploads, webhook
   * endpoints, redeliveries, provider keys) per API key per minute, one budget
   * over all of them; 0 turns it off.
   * @defaultValue 0
   */
  writesPerMinute?: number | undefined;
}

/** Route `config` that puts a route under the submission limit (ignored when the limit is off). */
export const SUBMISSION_ROUTE = { rateLimit: {} } as const;

const WRITE_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** A route marked with {@link SUBMISSION_ROUTE}: it has its own limit. */
function isSubmissionRoute(request: FastifyRequest): boolean {
  return request.routeOptions.config.rateLimit !== undefined;
}

/**
 * Per-API-key request limits (`@fastify/rate-limit` with its Redis store, so every
 * API process counts together): one per submission route, and one shared by every
 * other write of the scope it is registered in (/v1; the operator's /v1/admin
 * routes live outside it). Over a limit: 429 `rate_limited` with `Retry-After`. If
 * Redis fails the request is let through: the route itself then answers 503 if it
 * needs Redis.
 */
export const submissionRateLimitPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: SubmissionRateLimitOptions) => {
    const writesPerMinute = options.writesPerMinute ?? 0;
    if (options.perMinute <= 0 && writesPerMinute <= 0) return;
    const keyGenerator = (request: FastifyRequest) => request.principal?.apiKeyId ?? request.ip;
    await app.register(fastifyRateLimit, {
      global: false,
      max: options.perMinute,
      timeWindow: 60_000,
      hook: "preHandler", // after authentication, so the key is known
      redis: app.genq.redis,
      nameSpace: `${app.genq.queues.prefix}:rate-limit:`,
      skipOnError: true,
      keyGenerator,
      // Registered for the write limit alone: submission routes then stay unlimited.
      allowList: (request) => options.perMinute <= 0 && isSubmissionRoute(request),
      errorResponseBuilder: (_request, context) =>
        new GenqError(
          "rate_limited",
          `too many submissions: at most ${context.max} per minute per API key; retry after ${context.after}`,
          { details: { limit: context.max, retryAfterMs: context.ttl } },
        ),
    });
    if (writesPerMinute <= 0) return;
    const writes = app.createRateLimit({ max: writesPerMinute, timeWindow: 60_000, keyGenerator });
    // onRequest (after authentication, before the body is read): a refused upload costs no bytes.
    app.addHook("onRequest", async (request, reply) => {
      if (!WRITE_METHODS.has(request.method) || isSubmissionRoute(request)) return;
      const limit = await writes(request);
      if (limit.isAllowed || !limit.isExceeded) return;
      reply.header("retry-after", String(limit.ttlInSeconds));
      throw new GenqError(
        "rate_limited",
        `too many writes: at most ${limit.max} per minute per API key (uploads, webhook endpoints, redeliveries, keys); retry after ${limit.ttlInSeconds} s`,
        { details: { limit: limit.max, retryAfterMs: limit.ttl } },
      );
    });
  },
  { name: "genq-submission-rate-limit", dependencies: ["genq-resources", "genq-api-key-auth"] },
);
