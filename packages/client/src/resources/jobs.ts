import type { HttpClient, RequestOptions } from "../http-client.ts";
import type { CreateJobRequest, Job, JobDetail, JobPage, ListJobsQuery } from "../types.ts";
import { type EventsResource, isTerminalEvent } from "./events.ts";
import { type WaitOptions, waitFor } from "./wait-for.ts";

/** Options of the create methods. */
export interface CreateOptions extends RequestOptions {
  /**
   * Makes the request safe to repeat: the same key with the same body answers the same
   * job (or batch) instead of a second one. A random UUID when not given, so the
   * client's own retries never submit twice.
   */
  idempotencyKey?: string | undefined;
}

/** The job a create request makes: its type follows the request's `type`. */
export type JobOf<Request extends CreateJobRequest> = Extract<Job, { type: Request["type"] }>;

const FINISHED: ReadonlySet<string> = new Set(["completed", "failed", "canceled"]);

/** Whether a job reached `completed`, `failed` or `canceled`. */
export function isFinished(job: Pick<Job, "status">): boolean {
  return FINISHED.has(job.status);
}

/** `/v1/jobs`: submit, read, list, cancel and wait for jobs. */
export class JobsResource {
  readonly #http: HttpClient;
  readonly #events: EventsResource;

  constructor(http: HttpClient, events: EventsResource) {
    this.#http = http;
    this.#events = events;
  }

  /**
   * Submits a job. It is stored with a quota hold and queued by priority; a job that does
   * not fit the quota is refused with a `QuotaExceededError`.
   */
  create<Request extends CreateJobRequest>(
    body: Request,
    options: CreateOptions = {},
  ): Promise<JobOf<Request>> {
    return this.#http.json({
      method: "POST",
      path: "/v1/jobs",
      json: body,
      headers: { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() },
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
  }

  /** A job with its provider calls. */
  get(id: string, options: RequestOptions = {}): Promise<JobDetail> {
    return this.#http.json({ method: "GET", path: `/v1/jobs/${encodeURIComponent(id)}`, ...options });
  }

  /** A page of the caller's jobs, newest first; pass `nextCursor` as `cursor` for the next. */
  list(query: ListJobsQuery = {}, options: RequestOptions = {}): Promise<JobPage> {
    return this.#http.json({ method: "GET", path: "/v1/jobs", query, ...options });
  }

  /** Cancels a job: a queued one at once, a running one at its next safe point. */
  cancel(id: string, options: RequestOptions = {}): Promise<Job> {
    return this.#http.json({ method: "POST", path: `/v1/jobs/${encodeURIComponent(id)}/cancel`, ...options });
  }

  /**
   * Waits until the job is `completed`, `failed` or `canceled` and returns it (a failed
   * job is returned, not thrown: read its `error`). Follows the job's live events, and
   * polls when they are unavailable.
   */
  wait(id: string, options: WaitOptions = {}): Promise<JobDetail> {
    return waitFor<JobDetail>(
      {
        what: `job ${id}`,
        read: (signal) => this.get(id, { signal }),
        finished: isFinished,
        events: (signal) => this.#events.stream(id, { signal }),
        terminal: isTerminalEvent,
      },
      options,
    );
  }
}
