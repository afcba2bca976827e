import { timingSafeEqual } from "node:crypto";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { GenqError } from "@genq/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sendError } from "./error-handler.ts";

/** Where Bull Board is served. */
export const BULL_BOARD_PATH = "/admin/queues";

/** Options for {@link bullBoardPlugin}. */
export interface BullBoardPluginOptions {
  user: string;
  password: string;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when the request carries the operator's HTTP Basic credentials. */
export function hasOperatorCredentials(request: FastifyRequest, options: BullBoardPluginOptions): boolean {
  const header = request.headers.authorization;
  if (header === undefined || !/^Basic\s+/i.test(header)) return false;
  const decoded = Buffer.from(header.replace(/^Basic\s+/i, ""), "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator < 0) return false;
  return (
    sameSecret(decoded.slice(0, separator), options.user) &&
    sameSecret(decoded.slice(separator + 1), options.password)
  );
}

/**
 * Bull Board, the queue inspection UI, behind HTTP Basic auth with the operator's
 * credentials. Registered in its own scope so the check covers only its routes.
 */
export async function bullBoardPlugin(app: FastifyInstance, options: BullBoardPluginOptions): Promise<void> {
  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (hasOperatorCredentials(request, options)) return;
    reply.header("www-authenticate", 'Basic realm="genq operators", charset="UTF-8"');
    return sendError(reply, new GenqError("unauthorized", "operator credentials required (HTTP Basic auth)"));
  });
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: app.genq.queues.all().map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: "genq queues" } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
