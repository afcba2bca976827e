import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { FastifyInstance } from "fastify";
import { type OperatorCredentials, requireOperator } from "./operator-auth.ts";

/** Where Bull Board is served. */
export const BULL_BOARD_PATH = "/admin/queues";

/** Options for {@link bullBoardPlugin}. */
export type BullBoardPluginOptions = OperatorCredentials;

/**
 * Bull Board, the queue inspection UI, behind HTTP Basic auth with the operator's
 * credentials. Registered in its own scope so the check covers only its routes.
 */
export async function bullBoardPlugin(app: FastifyInstance, options: BullBoardPluginOptions): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: [...app.genq.queues.all(), app.genq.webhookQueue.queue].map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: "genq queues" } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
