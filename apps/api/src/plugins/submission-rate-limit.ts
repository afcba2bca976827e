import fastifyRateLimit from "@fastify/rate-limit";
import { GenqError } from "@genq/core";
import type { FastifyInstance } from "fastify";
import fastifyPlugin from "fastify-plugin";

/** Options for {@link submissionRateLimitPlugin}. */
export interface SubmissionRateLimitOptions {
  /** Requests per API key per minute; 0 turns the limit off. */
  perMinute: number;
}

/** Route `config` that puts a route under the submission limit (ignored when the limit is off). */
export const SUBMISSION_ROUTE = { rateLimit: {} } as const;

/**
 * A per-API-key request limit on submission routes (`@fastify/rate-limit` with its
 * Redis store, so every API process counts together). Over the limit: 429
 * `rate_limited` with `Retry-After`. If Redis fails the request is let through: the
 * route itself then answers 503 if it needs Redis.
 */
export const submissionRateLimitPlugin = fastifyPlugin(
  async (app: FastifyInstance, options: SubmissionRateLimitOptions) => {
    if (options.perMinute <= 0) return;
    await app.register(fastifyRateLimit, {
      global: false,
      max: options.perMinute,
      timeWindow: 60_000,
      hook: "preHandler", // after authentication, so the key is known
      redis: app.genq.redis,
      nameSpace: `${app.genq.queues.prefix}:rate-limit:`,
      skipOnError: true,
      keyGenerator: (request) => request.principal?.apiKeyId ?? request.ip,
      errorResponseBuilder: (_request, context) =>
        new GenqError(
          "rate_limited",
          `too many submissions: at most ${context.max} per minute per API key; retry after ${context.after}`,
          { details: { limit: context.max, retryAfterMs: context.ttl } },
        ),
    });
  },
  { name: "genq-submission-rate-limit", dependencies: ["genq-resources", "genq-api-key-auth"] },
);
