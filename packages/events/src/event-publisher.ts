import type { GenqEvent } from "@genq/core";
import type { BatchProgressReader } from "./batch-progress-reader.ts";
import { batchProgressGateKey } from "./event-keys.ts";
import type { EventAppend, EventLog } from "./event-log.ts";
import type { EventWatches } from "./event-watches.ts";
import { isTerminalEventType } from "./live-event.ts";

/** The logger the publisher reports lost events to. */
export interface EventPublisherLogger {
  warn(object: Record<string, unknown>, message: string): void;
}

const LOST_WARNING_INTERVAL_MS = 10_000;

/** Options for {@link EventPublisher}. */
export interface EventPublisherOptions {
  log: EventLog;
  logger?: EventPublisherLogger;
  /**
   * Live `batch.progress`: when a batch item finishes in this process, the batch is
   * marked, and every `intervalMs` (default 1 s) its counts are read with `read` and
   * published, at most once per interval per batch across all processes (a Redis
   * gate). Without it, the finished-job hooks' throttled `batch.progress` events
   * (the webhook ones, every 5 s) are published instead.
   */
  batchProgress?: { read: BatchProgressReader; intervalMs?: number };
  /**
   * Who listens ({@link EventWatches}, started by the caller). With it, an event is
   * published only when someone listens to its job or batch, or (job events) when
   * the job streams text: `job.delta` is always published, and so is every later
   * event of a job that published deltas in this process. Without it, everything
   * is published.
   */
  watches?: EventWatches;
}

/** How long a job that streamed text here keeps publishing everything, should its terminal event go elsewhere. */
const STREAMING_MEMORY_MS = 3_600_000;

/**
 * Publishes live events to the {@link EventLog}: job events to the job's stream,
 * batch events to the batch's stream. Best effort: publishing never throws (a lost
 * event costs a live view, never data: Postgres has the rows, and the SSE reader
 * falls back to them). Appends of one process go over one connection in call
 * order, so a job's deltas always precede its terminal event.
 */
export class EventPublisher {
  readonly log: EventLog;
  readonly #logger: EventPublisherLogger | undefined;
  readonly #progress: EventPublisherOptions["batchProgress"];
  readonly #dirtyBatches = new Set<string>();
  readonly #watches: EventWatches | undefined;
  /** Jobs that streamed text in this process → when they are forgotten. */
  readonly #streaming = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  /** Lost events since the last warning: while Redis is down, one warning per interval, not one per delta. */
  #lost = 0;
  #lastWarningAt = 0;

  constructor(options: EventPublisherOptions) {
    this.log = options.log;
    this.#logger = options.logger;
    this.#progress = options.batchProgress;
    this.#watches = options.watches;
    if (this.#progress !== undefined) {
      this.#timer = setInterval(() => void this.#tick(), this.#progress.intervalMs ?? 1_000);
      this.#timer.unref();
    }
  }

  /**
   * Publishes a job event (started, retrying, delta...) to the job's stream. Never rejects.
   * `streaming`: the job streams its text (`input.stream`), so this and every later event
   * is published whether or not someone listens (as its deltas are): a client that joins
   * mid-stream reads its `job.started` before the text.
   */
  async publishJobEvent(
    jobId: string,
    type: string,
    data: Record<string, unknown>,
    options: { streaming?: boolean } = {},
  ): Promise<void> {
    if (options.streaming === true && this.#watches !== undefined) this.#markStreaming(jobId);
    if (!this.#wantsJobEvent(jobId, type)) return;
    await this.#append([{ subject: { kind: "job", id: jobId }, type, data }]);
  }

  /** The listeners this publisher consults, if any (the API's SSE sessions announce theirs here). */
  get watches(): EventWatches | undefined {
    return this.#watches;
  }

  /** Whether a job event goes to the stream: always without watches; else when listened to or streaming. */
  #wantsJobEvent(jobId: string, type: string): boolean {
    const watches = this.#watches;
    if (watches === undefined) return true;
    if (type === "job.delta") {
      this.#markStreaming(jobId);
      return true;
    }
    const streaming = this.#streaming.has(jobId);
    if (streaming && isTerminalEventType(type)) this.#streaming.delete(jobId);
    return streaming || watches.isWatched({ kind: "job", id: jobId });
  }

  #markStreaming(jobId: string): void {
    if (this.#streaming.size > 10_000) this.#forgetStreaming();
    this.#streaming.set(jobId, Date.now() + STREAMING_MEMORY_MS);
  }

  #forgetStreaming(): void {
    const now = Date.now();
    for (const [jobId, until] of this.#streaming) if (until <= now) this.#streaming.delete(jobId);
  }

  /**
   * Publishes the events of a committed transition (`createJobFinishedHooks({ publish })`):
   * job events to the job's stream, `batch.completed` to the batch's. Items' job events
   * are not copied to the batch's stream (a batch of 100k items would write 100k
   * entries); they mark the batch for the coalesced `batch.progress` instead.
   */
  publishFinished = (events: readonly GenqEvent[]): void => {
    const appends: EventAppend[] = [];
    for (const event of events) {
      if (event.jobId !== null) {
        if (this.#wantsJobEvent(event.jobId, event.type)) {
          appends.push({ subject: { kind: "job", id: event.jobId }, type: event.type, data: event.data });
        }
        if (event.batchId !== null && this.#progress !== undefined && this.#wantsBatch(event.batchId)) {
          this.#dirtyBatches.add(event.batchId);
        }
      } else if (event.batchId !== null) {
        if (event.type === "batch.progress" && this.#progress !== undefined) continue;
        if (!this.#wantsBatch(event.batchId)) continue;
        appends.push({ subject: { kind: "batch", id: event.batchId }, type: event.type, data: event.data });
      }
    }
    void this.#append(appends);
  };

  #wantsBatch(batchId: string): boolean {
    return this.#watches?.isWatched({ kind: "batch", id: batchId }) ?? true;
  }

  /** Publishes the marked batches' progress now (also run by the interval timer). */
  async flushBatchProgress(): Promise<void> {
    await this.#tick();
  }

  /** Stops the progress timer. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    const progress = this.#progress;
    if (progress === undefined || this.#ticking || this.#dirtyBatches.size === 0) return;
    this.#ticking = true;
    const intervalMs = progress.intervalMs ?? 1_000;
    try {
      for (const batchId of [...this.#dirtyBatches]) {
        const gate = await this.log.redis.set(
          batchProgressGateKey(this.log.prefix, batchId),
          "1",
          "PX",
          intervalMs,
          "NX",
        );
        // Another process published this interval: try again next tick, so this process's
        // latest change is published by someone who read the counts after it.
        if (gate !== "OK") continue;
        this.#dirtyBatches.delete(batchId);
        const data = await progress.read(batchId);
        if (data !== null) {
          await this.#append([{ subject: { kind: "batch", id: batchId }, type: "batch.progress", data }]);
        }
      }
    } catch (error) {
      this.#logger?.warn({ err: error }, "could not publish batch progress");
    } finally {
      this.#ticking = false;
    }
  }

  async #append(appends: EventAppend[]): Promise<void> {
    if (appends.length === 0) return;
    try {
      await this.log.append(appends);
    } catch (error) {
      this.#lost += appends.length;
      if (Date.now() - this.#lastWarningAt < LOST_WARNING_INTERVAL_MS) return;
      this.#lastWarningAt = Date.now();
      this.#logger?.warn(
        { err: error, lost: this.#lost, types: appends.map((append) => append.type) },
        "could not publish live events (SSE clients fall back to the rows)",
      );
      this.#lost = 0;
    }
  }
}
