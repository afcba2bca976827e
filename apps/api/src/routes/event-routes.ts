import { randomUUID } from "node:crypto";
import { GenqError, isId, NotFoundError } from "@genq/core";
import { batchCounts, FINISHED_JOB_SELECT, jobFinishedEvents, toFinishedJob } from "@genq/db";
import {
  createBatchProgressReader,
  type EventSubject,
  type FinishedState,
  formatSseRetry,
  isStreamId,
  type LiveEvent,
  runEventSession,
  STREAM_START,
  StreamSlots,
} from "@genq/events";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import { z } from "zod";
import { type ApiKeyInvalidation, apiKeyCacheOf } from "../api-key-cache.ts";
import { BatchEvent, JobEvent } from "../openapi/event-schemas.ts";
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
  /**
   * Open streams one user holds at most, across every API process (leases in Redis that
   * lapse after `streamLeaseMs` when a process dies). Beyond it, new streams get 429
   * `rate_limited`. Default 20.
   */
  maxStreamsPerUser?: number | undefined;
  /** How long a stream's per-user slot outlives a process that stopped renewing it. Default 60 s. */
  streamLeaseMs?: number | undefined;
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
  429: ErrorResponse,
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
 * resumes without gaps or duplicates. The stream ends after the terminal event, and
 * within moments of its API key being revoked or its user disabled.
 * Written by hand on the raw response (hijacked): a few lines, full control of
 * flushing and backpressure.
 */
export async function eventRoutes(app: FastifyInstance, options: EventRoutesOptions): Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreams = options.maxStreams ?? 1_000;
  const retryMs = options.retryMs ?? 3_000;
  const slots = new StreamSlots({
    redis: app.genq.redis,
    prefix: app.genq.events.log.prefix,
    perUser: options.maxStreamsPerUser ?? 20,
    ...(options.streamLeaseMs === undefined ? {} : { leaseMs: options.streamLeaseMs }),
  });
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
    current: () => Promise<Omit<LiveEvent, "id"> | undefined>,
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
    const { principal } = request;
    const slotId = randomUUID();
    await takeSlot(slots, principal.userId, slotId);
    let reader: Redis;
    try {
      reader = await log.openReader("genq-sse");
    } catch (error) {
      await slots.release(principal.userId, slotId).catch(() => {});
      throw unavailable(error);
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
    const renewal = setInterval(() => {
      slots.renew(principal.userId, slotId).catch((error: unknown) => {
        request.log.warn({ err: error }, "could not renew a live stream's slot");
      });
    }, slots.leaseMs / 3);
    renewal.unref();
    // A revoked key or a disabled user ends the stream; other user changes (a plan) do not.
    const stopWatching = apiKeyCacheOf(app.server)?.onInvalidation((target) => {
      if (!concerns(target, principal)) return;
      stillAllowed(app, principal.apiKeyId).then(
        (allowed) => {
          if (allowed) return;
          request.log.info(
            { apiKeyId: principal.apiKeyId },
            "live stream closed: API key revoked or user disabled",
          );
          stop();
        },
        (error: unknown) => request.log.warn({ err: error }, "could not check a live stream's API key"),
      );
    });
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
        current,
        ...(app.genq.events.watches === undefined ? {} : { watches: app.genq.events.watches }),
      });
    } catch (error) {
      // A closed client or a lost Redis connection: the client reconnects with Last-Event-ID.
      if (!controller.signal.aborted) request.log.warn({ err: error }, "live event stream ended by an error");
    } finally {
      clearInterval(renewal);
      stopWatching?.();
      await slots.release(principal.userId, slotId).catch((error: unknown) => {
        request.log.warn({ err: error }, "could not release a live stream's slot (it lapses by itself)");
      });
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
        operationId: "streamJobEvents",
        summary: "Stream a job's events (SSE)",
        description:
          "A `text/event-stream` of the job's events: `job.started`, `job.retrying`, `job.delayed`, `job.delta` (text jobs with `stream: true`) and the terminal `job.completed`, `job.failed` or `job.canceled`, after which the stream ends. Reconnect with `Last-Event-ID` to resume.",
        tags: ["jobs"],
        params: IdParams,
        headers: EventsHeaders,
        querystring: EventsQuery,
        response: STREAM_RESPONSES,
        documentedResponses: {
          200: {
            description:
              "The job's events; each `data` is a `JobEvent` (JSON), `event` its name, `id` what to send back as `Last-Event-ID`",
            content: { "text/event-stream": JobEvent },
          },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!isId(id)) throw new NotFoundError("job", id);
      await app.genq.jobs.findForUser(request.principal.userId, id);
      const afterId = resumeAfter(request.headers["last-event-id"], request.query.lastEventId);
      await stream(
        request,
        reply,
        { kind: "job", id, afterId },
        async () => {
          const row = await app.genq.db.job.findUnique({ where: { id }, select: FINISHED_JOB_SELECT });
          if (row === null || !["completed", "failed", "canceled"].includes(row.status)) return undefined;
          const [event] = jobFinishedEvents([toFinishedJob(row)]);
          if (event === undefined) return undefined;
          return { event: { type: event.type, data: event.data }, finishedAt: row.finishedAt };
        },
        // A running job's job.started (what its worker published only if someone was listening then).
        async () => {
          const row = await app.genq.db.job.findUnique({
            where: { id },
            select: { status: true, attempts: true },
          });
          if (row?.status !== "active") return undefined;
          return {
            type: "job.started",
            data: { id, object: "job", status: "active", attempt: row.attempts },
          };
        },
      );
    },
  );

  routes.get(
    "/batches/:id/events",
    {
      schema: {
        operationId: "streamBatchEvents",
        summary: "Stream a batch's events (SSE)",
        description:
          "A `text/event-stream` of the batch's `batch.progress` events (about one per second while items finish) and the terminal `batch.completed`, after which the stream ends. Items' own events are on their jobs' streams. Reconnect with `Last-Event-ID` to resume.",
        tags: ["batches"],
        params: IdParams,
        headers: EventsHeaders,
        querystring: EventsQuery,
        response: STREAM_RESPONSES,
        documentedResponses: {
          200: {
            description:
              "The batch's events; each `data` is a `BatchEvent` (JSON), `event` its name, `id` what to send back as `Last-Event-ID`",
            content: { "text/event-stream": BatchEvent },
          },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const userId = request.principal.userId;
      if (!isId(id) || (await app.genq.db.batch.findFirst({ where: { id, userId } })) === null) {
        throw new NotFoundError("batch", id);
      }
      const afterId = resumeAfter(request.headers["last-event-id"], request.query.lastEventId);
      const progress = createBatchProgressReader(app.genq.db);
      const current = async () => {
        const data = await progress(id);
        return data === null ? undefined : { type: "batch.progress", data };
      };
      const finishedBatch = async (): Promise<FinishedState | undefined> => {
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
      };
      await stream(request, reply, { kind: "batch", id, afterId }, finishedBatch, current);
    },
  );
}

function unavailable(cause: unknown): GenqError {
  return new GenqError("service_unavailable", "live events are unavailable: Redis cannot be reached", {
    retryable: true,
    cause,
  });
}

/** Takes one of the user's stream slots, or refuses with 429 naming the limit. */
async function takeSlot(slots: StreamSlots, userId: string, slotId: string): Promise<void> {
  let taken: boolean;
  try {
    taken = await slots.acquire(userId, slotId);
  } catch (error) {
    throw unavailable(error);
  }
  if (taken) return;
  throw new GenqError(
    "rate_limited",
    `you have ${slots.perUser} live event streams open, the most one user may hold; close one (or reuse a batch stream) before opening another`,
    { retryable: true, details: { limit: "sse_streams_per_user", maxStreams: slots.perUser } },
  );
}

/** Whether an invalidation may be about this stream's key (`{}` may be about any). */
function concerns(target: ApiKeyInvalidation, principal: { userId: string; apiKeyId: string }): boolean {
  if (target.apiKeyId === undefined && target.userId === undefined) return true;
  return target.apiKeyId === principal.apiKeyId || target.userId === principal.userId;
}

/** True while the key is not revoked and its user not disabled. */
async function stillAllowed(app: FastifyInstance, apiKeyId: string): Promise<boolean> {
  const key = await app.genq.db.apiKey.findUnique({
    where: { id: apiKeyId },
    select: { revokedAt: true, user: { select: { disabledAt: true } } },
  });
  return key !== null && key.revokedAt === null && key.user.disabledAt === null;
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
