import { randomUUID } from "node:crypto";
import type { Database } from "@genq/db";
import {
  type EventLog,
  type EventWatches,
  type FinishedState,
  runEventSession,
  STREAM_START,
  StreamSlots,
} from "@genq/events";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import { z } from "zod";

/** The longest wait `Prefer: wait=N` may ask for, in seconds (and what `Prefer: wait` alone means). */
export const MAX_WAIT_SECONDS = 60;

/**
 * The seconds a `Prefer` header asks to wait (RFC 7240: comma-separated preferences,
 * each `token[=value]` with optional `;parameters`; names are case-insensitive).
 * `wait` alone means {@link MAX_WAIT_SECONDS}; a larger integer is capped at it.
 * A value that is not a positive integer is ignored, as RFC 7240 asks of preferences
 * a server cannot comply with: undefined, and the request is answered as without it.
 */
export function preferredWaitSeconds(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const preferences = (Array.isArray(header) ? header.join(",") : header).split(",");
  for (const preference of preferences) {
    const [nameValue = ""] = preference.split(";");
    const separator = nameValue.indexOf("=");
    const name = (separator === -1 ? nameValue : nameValue.slice(0, separator)).trim().toLowerCase();
    if (name !== "wait") continue;
    if (separator === -1) return MAX_WAIT_SECONDS;
    const value = nameValue
      .slice(separator + 1)
      .trim()
      .replace(/^"(.*)"$/, "$1");
    if (!/^\d+$/.test(value)) return undefined;
    const seconds = Number(value);
    return seconds === 0 ? undefined : Math.min(seconds, MAX_WAIT_SECONDS);
  }
  return undefined;
}

/** Options for {@link JobWaits}. */
export interface JobWaitsOptions {
  db: Database;
  /** A producer connection: the per-user slots. */
  redis: Redis;
  /** The queue prefix; slots are `<prefix>:waits:slots:<user id>`. */
  prefix: string;
  /** The job event log: each wait reads the job's stream on a connection of its own. */
  log: EventLog;
  /** Announces the wait so that workers publish the job's terminal event (decision 0016). */
  watches?: EventWatches | undefined;
  /** Waits this process holds at once at most; beyond it, `Prefer: wait` is not honoured. Default 500. */
  maxWaits?: number | undefined;
  /** Waits one user holds at once at most, over every API process. Default 10. */
  maxWaitsPerUser?: number | undefined;
  /** How often the job's row is read again while no event comes (a lost publish). Default 2 s. */
  checkIntervalMs?: number | undefined;
}

/** A request to wait for a job; see {@link JobWaits.wait}. */
export interface WaitRequest {
  userId: string;
  jobId: string;
  seconds: number;
  /** Aborted when the client went away: the wait ends and frees its slot at once. */
  signal: AbortSignal;
}

const TERMINAL_STATUSES = new Set(["completed", "failed", "canceled"]);

/**
 * Waits for jobs to finish on behalf of `POST /v1/jobs` with `Prefer: wait=N`, without
 * polling Postgres in a loop and without calling a provider: each wait is a live event
 * session on the job's stream (the same as an SSE client's, decision 0016: the watch is
 * confirmed by every publisher before the row is read, so the terminal event cannot be
 * missed) that sends nowhere and ends at the terminal event, at the deadline, or when
 * the client leaves. A wait holds one Redis connection (its blocking read) and one
 * per-user slot (a lease in Redis, like the SSE slots); both limits are checked before
 * anything is opened, and a wait that cannot be had is simply not honoured.
 */
export class JobWaits {
  readonly #options: JobWaitsOptions;
  readonly #slots: StreamSlots;
  readonly #open = new Set<() => void>();
  readonly maxWaits: number;
  readonly #checkIntervalMs: number;

  constructor(options: JobWaitsOptions) {
    this.#options = options;
    this.maxWaits = options.maxWaits ?? 500;
    if (!(Number.isInteger(this.maxWaits) && this.maxWaits >= 1))
      throw new RangeError("JobWaits: maxWaits must be a positive integer");
    this.#checkIntervalMs = options.checkIntervalMs ?? 2_000;
    this.#slots = new StreamSlots({
      redis: options.redis,
      prefix: options.prefix,
      scope: "waits:slots",
      perUser: options.maxWaitsPerUser ?? 10,
      // Longer than any wait, so a slot is never renewed; a crashed process's slots lapse after it.
      leaseMs: (MAX_WAIT_SECONDS + 10) * 1_000,
    });
  }

  /** Waits one user may hold at once. */
  get maxWaitsPerUser(): number {
    return this.#slots.perUser;
  }

  /** Waits this process holds now. */
  get open(): number {
    return this.#open.size;
  }

  /** Waits the user holds now over every API process (for tests and diagnostics). */
  held(userId: string): Promise<number> {
    return this.#slots.count(userId);
  }

  /**
   * Waits until the job is finished, `seconds` pass or the client leaves. Resolves true
   * when the wait was honoured (whatever the job's state now: the caller reads the row),
   * false when it could not be had: this process or the user holds its maximum of waits,
   * or Redis cannot be reached. Never rejects.
   */
  async wait(request: WaitRequest): Promise<boolean> {
    if (this.#open.size >= this.maxWaits || request.signal.aborted) return false;
    const controller = new AbortController();
    const slotId = randomUUID();
    let slotTaken = false;
    let reader: Redis | undefined;
    const stop = () => {
      controller.abort();
      // Ends a pending blocking read at once.
      reader?.disconnect();
    };
    // Counted before the first await, so concurrent requests cannot overshoot the limit.
    this.#open.add(stop);
    const timer = setTimeout(stop, request.seconds * 1_000);
    request.signal.addEventListener("abort", stop, { once: true });
    try {
      slotTaken = await this.#slots.acquire(request.userId, slotId);
      if (!slotTaken || controller.signal.aborted) return slotTaken;
      reader = await this.#options.log.openReader("genq-wait");
      if (controller.signal.aborted) return true;
      await runEventSession({
        log: this.#options.log,
        subject: { kind: "job", id: request.jobId },
        afterId: STREAM_START,
        reader,
        heartbeatMs: this.#checkIntervalMs,
        signal: controller.signal,
        // The caller answers with the row: the events only tell when to read it.
        send: async () => {},
        finished: () => this.#finished(request.jobId),
        ...(this.#options.watches === undefined ? {} : { watches: this.#options.watches }),
      });
      return true;
    } catch {
      // Redis lost mid-wait: the wait was had as far as it went; before the slot, it was not.
      return slotTaken;
    } finally {
      clearTimeout(timer);
      request.signal.removeEventListener("abort", stop);
      reader?.disconnect();
      this.#open.delete(stop);
      if (slotTaken) await this.#slots.release(request.userId, slotId).catch(() => {});
    }
  }

  /** Ends every wait now (the server is closing); each request answers with the job as it is. */
  abortAll(): void {
    for (const stop of this.#open) stop();
  }

  async #finished(jobId: string): Promise<FinishedState | undefined> {
    const row = await this.#options.db.job.findUnique({
      where: { id: jobId },
      select: { status: true, finishedAt: true },
    });
    if (row === null || !TERMINAL_STATUSES.has(row.status)) return undefined;
    // Only the fact matters here (nothing is sent); the event names the state.
    return { event: { type: `job.${row.status}`, data: { id: jobId } }, finishedAt: row.finishedAt };
  }
}

/** The `Prefer` request header as `POST /v1/jobs` documents it. */
export const PreferWaitHeader = z
  .string()
  .max(1_000)
  .optional()
  .describe(
    "`wait=N` (RFC 7240): hold the response up to N seconds (1–60; `wait` alone means 60, more is capped at 60) " +
      "and answer 200 with the finished job if it ends in time, else 202 as usual. The response carries " +
      "`Preference-Applied: wait=N` when the wait was honoured; values that are not a positive integer are " +
      "ignored, and when the caller (10) or the API process (500) holds its maximum of waits the request is " +
      "answered at once without `Preference-Applied`",
  )
  .meta({ examples: ["wait=30"] });

/**
 * Waits for `jobId` on behalf of one HTTP request (see {@link JobWaits.wait}); the wait
 * ends at once when the client closes the connection. True when honoured.
 */
export function waitForRequest(
  waits: JobWaits,
  request: FastifyRequest,
  reply: FastifyReply,
  jobId: string,
  seconds: number,
): Promise<boolean> {
  const gone = new AbortController();
  const leave = () => gone.abort();
  reply.raw.on("close", leave);
  // Gone already (during admission): its `close` came before the listener.
  if (request.raw.socket?.destroyed === true) gone.abort();
  return waits
    .wait({ userId: request.principal.userId, jobId, seconds, signal: gone.signal })
    .finally(() => reply.raw.off("close", leave));
}
