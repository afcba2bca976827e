import type { JobType, QueuedJobPayload } from "@genq/core";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { cancelChannel, DEFAULT_QUEUE_PREFIX, QUEUE_CATALOG, type QueueDefinition } from "./queue-catalog.ts";
import { type QueuePosition, QueuePositions } from "./queue-position.ts";

/** Options for {@link JobQueues}. */
export interface JobQueuesOptions {
  /** A producer connection (see `createRedisConnection`). Not closed by {@link JobQueues.close}. */
  connection: Redis;
  /** Redis key prefix; tests use their own to stay isolated. */
  prefix?: string;
  /** Overrides of the catalog's attempts and backoff. */
  overrides?: Partial<Record<JobType, Partial<QueueDefinition>>>;
}

/** A job to put on its queue. */
export interface EnqueueRequest {
  id: string;
  type: JobType;
  /** BullMQ priority: lower runs first. */
  priority: number;
  /** W3C trace context (`traceparent`) the worker continues; absent when tracing is off. */
  trace?: Record<string, string> | undefined;
}

/** KEYS[1] the lease; ARGV: holder, ttl ms. 1 when ARGV[1] holds it afterwards. */
const HOLD_LEASE = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The producer side of genq's queues. The BullMQ job id is the genq job id, so
 * adding the same job twice (reconciler and API racing) keeps a single entry.
 */
export class JobQueues {
  readonly prefix: string;
  readonly #connection: Redis;
  readonly #queues = new Map<JobType, Queue<QueuedJobPayload>>();
  readonly #definitions: Record<JobType, QueueDefinition>;
  #positions: QueuePositions | undefined;

  constructor(options: JobQueuesOptions) {
    this.#connection = options.connection;
    this.prefix = options.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.#definitions = {
      text: { ...QUEUE_CATALOG.text, ...options.overrides?.text },
      image: { ...QUEUE_CATALOG.image, ...options.overrides?.image },
    };
  }

  /** The definition in force for a job type. */
  definition(type: JobType): QueueDefinition {
    return this.#definitions[type];
  }

  /** The BullMQ queue of a job type (created on first use). */
  queue(type: JobType): Queue<QueuedJobPayload> {
    let queue = this.#queues.get(type);
    if (queue === undefined) {
      queue = new Queue<QueuedJobPayload>(this.#definitions[type].name, {
        connection: this.#connection,
        prefix: this.prefix,
        skipWaitingForReady: true,
      });
      // Errors surface through the calls that fail; this keeps them off the process.
      queue.on("error", () => {});
      this.#queues.set(type, queue);
    }
    return queue;
  }

  /** Every queue, for Bull Board and metrics. */
  all(): Array<Queue<QueuedJobPayload>> {
    return (Object.keys(this.#definitions) as JobType[]).map((type) => this.queue(type));
  }

  /** Puts a job on its queue with the catalog's retry policy. */
  async enqueue(request: EnqueueRequest): Promise<void> {
    await this.queue(request.type).add(request.type, payloadOf(request), this.#jobOptions(request));
  }

  /**
   * Puts many jobs on their queues with the same options as {@link JobQueues.enqueue},
   * in `addBulk` calls of at most `chunkSize` (one Redis round trip each).
   */
  async enqueueBulk(requests: readonly EnqueueRequest[], chunkSize = 1_000): Promise<void> {
    for (const type of Object.keys(this.#definitions) as JobType[]) {
      const ofType = requests.filter((request) => request.type === type);
      for (let start = 0; start < ofType.length; start += chunkSize) {
        await this.queue(type).addBulk(
          ofType.slice(start, start + chunkSize).map((request) => ({
            name: type,
            data: payloadOf(request),
            opts: this.#jobOptions(request),
          })),
        );
      }
    }
  }

  #jobOptions(request: EnqueueRequest) {
    const definition = this.#definitions[request.type];
    return {
      jobId: request.id,
      priority: request.priority,
      attempts: definition.attempts,
      backoff: { type: "genq", delay: definition.backoffMs },
      // Postgres holds the history; Redis keeps a little for Bull Board.
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 24 * 3_600, count: 5_000 },
    };
  }

  /** Whether BullMQ knows the job (in any state). */
  async has(type: JobType, id: string): Promise<boolean> {
    return (await this.state(type, id)) !== "unknown";
  }

  /** The job's BullMQ state, or "unknown" when BullMQ does not have it. */
  state(type: JobType, id: string): Promise<string> {
    return this.queue(type).getJobState(id);
  }

  /** Where a queued job stands in its queue, and an estimate of when it starts ({@link QueuePositions}). */
  position(type: JobType, id: string): Promise<QueuePosition> {
    this.#positions ??= new QueuePositions({
      connection: this.#connection,
      prefix: this.prefix,
      queueName: (jobType) => this.#definitions[jobType].name,
    });
    return this.#positions.of(type, id);
  }

  /**
   * Puts a job back on its queue even when BullMQ still holds it as completed or
   * failed (its record says otherwise): the finished BullMQ entry is removed first.
   */
  async requeue(request: EnqueueRequest): Promise<void> {
    await this.queue(request.type).remove(request.id);
    await this.enqueue(request);
  }

  /**
   * Takes a lease named `name` for `ttlMs` if nobody holds it; true when taken.
   * For periodic work that one process at a time should do. A lease lost with
   * Redis' data is simply taken again.
   */
  async acquireLease(name: string, ttlMs: number): Promise<boolean> {
    return (
      (await this.#connection.set(`${this.prefix}:lease:${name}`, String(process.pid), "PX", ttlMs, "NX")) ===
      "OK"
    );
  }

  /**
   * Takes or renews a lease named `name` for `ttlMs`, held by `holder` (a token of
   * the caller's own, e.g. a random UUID): true when `holder` holds it now, whether
   * it was free or `holder` held it already. For a holder that keeps the lease over
   * many passes: unlike {@link JobQueues.acquireLease}, its own unexpired lease does
   * not lock it out.
   */
  async holdLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const held = await this.#connection.eval(
      HOLD_LEASE,
      1,
      `${this.prefix}:lease:${name}`,
      holder,
      String(ttlMs),
    );
    return held === 1;
  }

  /**
   * Gives up a lease `holder` holds (a lease another holder took meanwhile stays), so
   * that a stopping process's successor need not wait out its time.
   */
  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#connection.eval(RELEASE_LEASE, 1, `${this.prefix}:lease:${name}`, holder);
  }

  /** Removes a waiting job; an active (locked) one stays and is canceled by its worker. */
  async removeWaiting(type: JobType, id: string): Promise<void> {
    try {
      await this.queue(type).remove(id);
    } catch {
      // Locked by a worker: the worker sees the cancel flag at its next safe point.
    }
  }

  /** Tells the workers to abort an active job. */
  async publishCancel(id: string): Promise<void> {
    await this.#connection.publish(cancelChannel(this.prefix), id);
  }

  /** Closes the queues (not the connection, which the caller owns). */
  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
    this.#queues.clear();
  }
}

/** What BullMQ carries for a job: its id, and the trace context when there is one. */
function payloadOf(request: EnqueueRequest): QueuedJobPayload {
  return request.trace === undefined ? { jobId: request.id } : { jobId: request.id, trace: request.trace };
}
