import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { type ErrorCode, GenqError, isErrorCode } from "@genq/core";
import type { FastifyInstance } from "fastify";
import type { JobRedrive } from "../redrive-job.ts";
import { sendError } from "./error-handler.ts";
import { boardErrorResponse, GenqQueueAdapter } from "./genq-queue-adapter.ts";
import { type OperatorCredentials, requireOperator } from "./operator-auth.ts";

/** Where Bull Board is served. */
export const BULL_BOARD_PATH = "/admin/queues";

/** Options for {@link bullBoardPlugin}. */
export interface BullBoardPluginOptions extends OperatorCredentials {
  /** Runs failed jobs again: the board's Retry of a genq job. */
  redrive: JobRedrive;
}

/**
 * Bull Board, the queue inspection UI, behind HTTP Basic auth with the operator's
 * credentials. Registered in its own scope so the check covers only its routes.
 */
export async function bullBoardPlugin(app: FastifyInstance, options: BullBoardPluginOptions): Promise<void> {
  app.addHook("onRequest", requireOperator(options));
  // Bull Board joins its validation messages with NUL and splits them again: a NUL the
  // client sent makes that split fail and the request answer 500. Refuse it first.
  app.addHook("preHandler", async (request, reply) => {
    if (containsNul([request.body, request.query, request.params])) {
      return sendError(
        reply,
        new GenqError("invalid_request", "the request must not contain NUL characters"),
      );
    }
  });
  app.addHook("onSend", async (_request, reply, payload) =>
    reply.statusCode >= 400 && typeof payload === "string"
      ? withErrorCode(payload, reply.statusCode)
      : payload,
  );
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  const { db, lifecycle, quota } = app.genq;
  const genqOptions = { db, lifecycle, quota, redrive: options.redrive, logger: app.log };
  createBullBoard({
    queues: [
      // genq's job queues speak genq: readable job data, Retry = redrive, removal = cancel (decision 0024).
      ...app.genq.queues.all().map((queue) => new GenqQueueAdapter(queue, genqOptions)),
      new BullMQAdapter(app.genq.webhookQueue.queue),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: "genq queues" } },
  });
  // The board's own handler answers `statusCode` and the message; genq's errors also carry their code.
  serverAdapter.setErrorHandler(boardErrorResponse);
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}

/** The genq code of a status Bull Board answers with (its bodies carry an i18n key, not a code). */
function codeForStatus(status: number): ErrorCode {
  const codes: Record<number, ErrorCode> = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
  };
  return codes[status] ?? (status >= 500 ? "internal_error" : "invalid_request");
}

/**
 * Bull Board's own error bodies (`{"error":{"key":"ERRORS.QUEUE_NOT_FOUND"}}`)
 * get genq's `error.code` and `error.message` as well; its UI keeps reading `key`.
 */
export function withErrorCode(payload: string, status: number): string {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return payload; // not JSON: an HTML page of the UI
  }
  if (body === null || typeof body !== "object") return payload;
  const record = body as { error?: unknown; message?: unknown };
  const error = (typeof record.error === "object" && record.error !== null ? record.error : {}) as Record<
    string,
    unknown
  >;
  if (typeof error.code === "string" && isErrorCode(error.code)) return payload;
  const key = typeof error.key === "string" ? error.key : undefined;
  const code = codeForStatus(status);
  const message =
    typeof record.message === "string" && record.message.length > 0
      ? record.message
      : key !== undefined
        ? key
            .replace(/^ERRORS\./, "")
            .replaceAll("_", " ")
            .toLowerCase()
        : `the queue dashboard answered ${status}`;
  return JSON.stringify({ ...record, error: { ...error, code, message } });
}

/** True when a string (key or value) anywhere in `value` has a NUL; iterative, so any depth is fine. */
function containsNul(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current === "string") {
      if (current.includes("\u0000")) return true;
    } else if (current !== null && typeof current === "object") {
      for (const [key, item] of Object.entries(current)) {
        if (key.includes("\u0000")) return true;
        pending.push(item);
      }
    }
  }
  return false;
}
