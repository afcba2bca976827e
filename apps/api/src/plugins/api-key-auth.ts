import { GenqError } from "@genq/core";
import type { Principal } from "@genq/db";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fastifyPlugin from "fastify-plugin";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated caller; set on every /v1 route. */
    principal: Principal;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Reads the caller's API key from `Authorization: Bearer <key>`. */
async function authenticate(app: FastifyInstance, request: FastifyRequest): Promise<void> {
  const header = request.headers.authorization;
  if (header === undefined) {
    throw new GenqError("unauthorized", "missing API key: send `Authorization: Bearer <api key>`");
  }
  const match = BEARER.exec(header);
  if (match?.[1] === undefined) {
    throw new GenqError("unauthorized", "malformed Authorization header: expected `Bearer <api key>`");
  }
  const principal = await app.genq.accounts.authenticate(match[1]);
  if (principal === null) {
    throw new GenqError("unauthorized", "the API key is unknown, revoked, or its user is disabled");
  }
  request.principal = principal;
  request.log = request.log.child({ userId: principal.userId });
}

/** Requires an API key on every route of the scope it is registered in. */
export const apiKeyAuthPlugin = fastifyPlugin(
  async (app: FastifyInstance) => {
    app.decorateRequest("principal", undefined as unknown as Principal);
    app.addHook("onRequest", async (request) => authenticate(app, request));
  },
  { name: "genq-api-key-auth", dependencies: ["genq-resources"] },
);
