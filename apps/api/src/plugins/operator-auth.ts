import { timingSafeEqual } from "node:crypto";
import { GenqError } from "@genq/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sendError } from "./error-handler.ts";
import { OperatorLoginLimiter, type OperatorLoginLimits } from "./operator-login-limiter.ts";

/** The operator's HTTP Basic credentials (Bull Board and /v1/admin), separate from users' API keys. */
export interface OperatorCredentials {
  user: string;
  password: string;
  /** Limits on failed logins (per client IP and per user name, shared through Redis); defaults apply when absent. */
  loginLimits?: OperatorLoginLimits | undefined;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The user name and password of an HTTP Basic `Authorization` header, if it carries one. */
function basicCredentials(request: FastifyRequest): { user: string; password: string } | undefined {
  const header = request.headers.authorization;
  if (header === undefined || !/^Basic\s+/i.test(header)) return undefined;
  const decoded = Buffer.from(header.replace(/^Basic\s+/i, ""), "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator < 0) return undefined;
  return { user: decoded.slice(0, separator), password: decoded.slice(separator + 1) };
}

/** True when the request carries the operator's HTTP Basic credentials. */
export function hasOperatorCredentials(request: FastifyRequest, credentials: OperatorCredentials): boolean {
  const given = basicCredentials(request);
  return (
    given !== undefined &&
    sameSecret(given.user, credentials.user) &&
    sameSecret(given.password, credentials.password)
  );
}

/** One limiter per app (the hook is added in several route plugins of the same app). */
const limiters = new WeakMap<FastifyInstance, OperatorLoginLimiter>();

function limiterFor(app: FastifyInstance, limits: OperatorLoginLimits | undefined): OperatorLoginLimiter {
  let limiter = limiters.get(app);
  if (limiter === undefined) {
    limiter = new OperatorLoginLimiter({ redis: app.genq.redis, prefix: app.genq.queues.prefix, ...limits });
    limiters.set(app, limiter);
  }
  return limiter;
}

function challenge(reply: FastifyReply): FastifyReply {
  reply.header("www-authenticate", 'Basic realm="genq operators", charset="UTF-8"');
  return sendError(reply, new GenqError("unauthorized", "operator credentials required (HTTP Basic auth)"));
}

/**
 * An `onRequest` hook answering 401 (with a Basic challenge) unless the operator's
 * credentials are given. Failed logins are counted per client IP and per user name
 * (see {@link OperatorLoginLimits}); over the limit the answer is 429 with
 * `Retry-After`, before the password is even compared. If Redis is down the
 * count is skipped and the password check alone decides.
 */
export function requireOperator(credentials: OperatorCredentials) {
  return async function checkOperator(request: FastifyRequest, reply: FastifyReply) {
    const given = basicCredentials(request);
    // A request without credentials is a browser asking for the login prompt, not a guess.
    if (given === undefined) return challenge(reply);
    const limiter = limiterFor(request.server, credentials.loginLimits);
    const retryAfterMs = await limiter.retryAfterMs(request.ip, given.user).catch((error: unknown) => {
      request.log.warn({ err: error }, "operator login limiter unavailable");
      return undefined;
    });
    if (retryAfterMs !== undefined) {
      const seconds = Math.ceil(retryAfterMs / 1_000);
      reply.header("retry-after", String(seconds));
      return sendError(
        reply,
        new GenqError("rate_limited", `too many failed operator logins; retry after ${seconds} s`, {
          details: { retryAfterMs },
        }),
      );
    }
    if (sameSecret(given.user, credentials.user) && sameSecret(given.password, credentials.password)) return;
    request.log.warn({ ip: request.ip }, "failed operator login");
    await limiter.recordFailure(request.ip, given.user).catch((error: unknown) => {
      request.log.warn({ err: error }, "operator login limiter unavailable");
    });
    return challenge(reply);
  };
}
