import { GenqError, isId, NotFoundError } from "@genq/core";
import { batchCounts, FINISHED_JOB_SELECT, jobFinishedEvents, toFinishedJob } from "@genq/db";
import {
  type EventSubject,
  type FinishedState,
  formatSseRetry,
  isStreamId,
  runEventSession,
  STREAM_START,
} from "@genq/events";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import { z } from "zod";
import { ErrorResponse } from "./error-response.ts";

/** Options for {@link eventRoutes}. */
export interface EventRoutesOptions {
  /** A `: keep-alive` comment after this long without events (and the row is checked again). Default 15 s. */
  heartbeatMs?: number | undefined;
  /**
   * Open streams this process serves at most; each holds one Redis connection for its
   * blocking reads. Beyond it, new streams get 503 `service_unavailable` (clients retry,
   * ideally against another API instance). Default 1,000.
   */
  maxStreams?: number | undefined;
  /** The reconnection delay sent to clients (`retry:`), in milliseconds. Default 3 s. */
  retryMs?: number | undefined;
}

const IdParams = z.object({ id: z.string().describe("The job or batch id") });

const EventsHeaders = z.object({
  "last-event-id": z
    .string()
    .optional()
    .describe("Resume after this event (EventSource sends it when it reconnects)"),
});

const EventsQuery = z.object({
  lastEventId: z
    .string()
    .optional()
    .describe("Resume after this event, for clients that cannot set the Last-Event-ID header"),
});

const STREAM_RESPONSES = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  503: ErrorResponse,
};

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  // nginx and similar proxies would otherwise buffer the stream.
  "x-accel-buffering": "no",
};

/**
 * Live events over server-sent events: `GET /jobs/:id/events` and
 * `GET /batches/:id/events`. Events come from the per-job and per-batch Redis
 * streams that workers and APIs publish to (any process may publish, any API
 * instance may serve the client); entry ids are the SSE ids, so `Last-Event-ID`
 * resumes without gaps or duplicates. The stream ends after the terminal event.
 * Written by hand on the raw response (hijacked): a few lines, full control of
 * flushing and backpressure.
 */
export async function eventRoutes(app: FastifyInstance, options: EventRoutesOptions): Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreams = options.maxStreams ?? 1_000;
  const retryMs = options.retryMs ?? 3_000;
  const routes = app.withTypeProvider<ZodTypeProvider>();
  /** Stops of the open streams, so the server can close while clients are connected. */
  const open = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const stop of open) stop();
  });

  const stream = async (
    request: FastifyRequest,
    reply: FastifyReply,
    subject: EventSubject & { afterId: string },
    finished: () => Promise<FinishedState | undefined>,
  ): Promise<void> => {
    const { afterId } = subject;
    if (open.size >= maxStreams) {
      throw new GenqError(
        "service_unavailable",
        "this API instance serves its maximum of live streams; retry",
        {
          retryable: true,
        },
      );
    }
    const { log } = app.genq.events;
    let reader: Redis;
    try {
      reader = await log.openReader("genq-sse");
    } catch (error) {
      throw new GenqError("service_unavailable", "live events are unavailable: Redis cannot be reached", {
        retryable: true,
        cause: error,
      });
    }
    reply.hijack();
    const raw = reply.raw;
    const controller = new AbortController();
    const stop = () => {
      controller.abort();
      // Ends a pending blocking read at once.
      reader.disconnect();
    };
    open.add(stop);
    raw.on("close", stop);
    raw.writeHead(200, { ...SSE_HEADERS, "x-request-id": request.id });
    const send = async (text: string) => {
      if (controller.signal.aborted || raw.writableEnded) return;
      if (raw.write(text)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          raw.off("drain", done);
          raw.off("close", done);
          resolve();
        };
        raw.on("drain", done);
        raw.on("close", done);
      });
    };
    try {
      await send(formatSseRetry(retryMs));
      await runEventSession({
        log,
        subject: { kind: subject.kind, id: subject.id },
        afterId,
        reader,
        heartbeatMs,
        signal: controller.signal,
        send,
        finished,
      });
    } catch (error) {
      // A closed client or a lost Redis connection: the client reconnects with Last-Event-ID.
      if (!controller.signal.aborted) request.log.warn({ err: error }, "live event stream ended by an error");
    } finally {
      open.delete(stop);
      raw.off("close", stop);
      reader.disconnect();
      if (!raw.writableEnded) raw.end();
    }
  };

  routes.get(
    "/jobs/:id/events",
    {
      schema: {
        summary: "Stream a job's events (SSE)",
        description:
          "A `text/event-stream` of the job's events: `job.started`, `job.retrying`, `job.delayed`, `job.delta` (text jobs with `stream: true`) and the terminal `job.completed`, `job.failed` or `job.canceled`, after which the stream ends. Reconnect with `Last-Event-ID` to resume.",
        tags: ["jobs"],
        params: IdParams,
        headers: EventsHeaders,
        querystring: EventsQuery,
        response: STREAM_RESPONSES,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!isId(id)) throw new NotFoundError("job", id);
      await app.genq.jobs.findForUser(request.principal.userId, id);
      const afterId = resumeAfter(request.headers["last-event-id"], request.query.lastEventId);
      await stream(request, reply, { kind: "job", id, afterId }, async () => {
        const row = await app.genq.db.job.findUnique({ where: { id }, select: FINISHED_JOB_SELECT });
        if (row === null || !["completed", "failed", "canceled"].includes(row.status)) return undefined;
        const [event] = jobFinishedEvents([toFinishedJob(row)]);
        if (event === undefined) return undefined;
        return { event: { type: event.type, data: event.data }, finishedAt: row.finishedAt };
      });
    },
  );

  routes.get(
    "/batches/:id/events",
    {
      schema: {
        summary: "Stream a batch's events (SSE)",
        description:
          "A `text/event-stream` of the batch's `batch.progress` events (about one per second while items finish) and the terminal `batch.completed`, after which the stream ends. Items' own events are on their jobs' streams. Reconnect with `Last-Event-ID` to resume.",
        tags: ["batches"],
        params: IdParams,
        headers: EventsHeaders,
        querystring: EventsQuery,
        response: STREAM_RESPONSES,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const userId = request.principal.userId;
      if (!isId(id) || (await app.genq.db.batch.findFirst({ where: { id, userId } })) === null) {
        throw new NotFoundError("batch", id);
      }
      const afterId = resumeAfter(request.headers["last-event-id"], request.query.lastEventId);
      await stream(request, reply, { kind: "batch", id, afterId }, async () => {
        const batch = await app.genq.db.batch.findUnique({ where: { id } });
        if (batch === null || batch.status === "running") return undefined;
        const counts = batchCounts(batch);
        const finished = counts.completed + counts.failed + counts.canceled;
        return {
          event: {
            type: "batch.completed",
            data: {
              id: batch.id,
              object: "batch",
              status: batch.status,
              counts,
              progress: batch.total === 0 ? 100 : Math.floor((finished / batch.total) * 100),
            },
          },
          finishedAt: batch.finishedAt,
        };
      });
    },
  );
}

/** Where to resume: the `Last-Event-ID` header, else `?lastEventId=`, else the start of the stream. */
function resumeAfter(header: string | undefined, query: string | undefined): string {
  const value = header ?? query;
  if (value === undefined || value === "") return STREAM_START;
  if (!isStreamId(value)) {
    throw new GenqError(
      "invalid_request",
      "Last-Event-ID must be the id of an event of this stream, such as 1700000000000-0",
      { details: { lastEventId: value.slice(0, 64) } },
    );
  }
  return value;
}
