import { timingSafeEqual } from "node:crypto";
import { GenqError } from "@genq/core";
import type { FastifyReply, FastifyRequest } from "fastify";
import { sendError } from "./error-handler.ts";

/** The operator's HTTP Basic credentials (Bull Board and /v1/admin), separate from users' API keys. */
export interface OperatorCredentials {
  user: string;
  password: string;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when the request carries the operator's HTTP Basic credentials. */
export function hasOperatorCredentials(request: FastifyRequest, credentials: OperatorCredentials): boolean {
  const header = request.headers.authorization;
  if (header === undefined || !/^Basic\s+/i.test(header)) return false;
  const decoded = Buffer.from(header.replace(/^Basic\s+/i, ""), "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator < 0) return false;
  return (
    sameSecret(decoded.slice(0, separator), credentials.user) &&
    sameSecret(decoded.slice(separator + 1), credentials.password)
  );
}

/** An `onRequest` hook answering 401 (with a Basic challenge) unless the operator's credentials are given. */
export function requireOperator(credentials: OperatorCredentials) {
  return async function checkOperator(request: FastifyRequest, reply: FastifyReply) {
    if (hasOperatorCredentials(request, credentials)) return;
    reply.header("www-authenticate", 'Basic realm="genq operators", charset="UTF-8"');
    return sendError(reply, new GenqError("unauthorized", "operator credentials required (HTTP Basic auth)"));
  };
}
