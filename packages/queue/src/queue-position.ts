import type { JobType } from "@genq/core";
import type { Redis } from "ioredis";

/**
 * Where a queued job stands in BullMQ, and how fast its queue drains. One script, all
 * of it O(log n) in the queue's length (ZRANK, LLEN, ZSCORE, ZCOUNT, ZRANGEBYSCORE
 * … LIMIT 0 1), so a read costs the same on a queue of 10 or of 1,000,000 jobs.
 *
 * KEYS: prioritized, wait, delayed, completed, failed. ARGV: job id, window start (ms).
 * Returns { state, jobs ahead or delayed score, finished in the window, when the first
 * of them finished } with "-1" for absent numbers.
 */
const POSITION_SCRIPT = `
local state, where = 'absent', '-1'
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if rank then
  state, where = 'waiting', tostring(rank + redis.call('LLEN', KEYS[2]))
else
  local due = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if due then state, where = 'delayed', due end
end
local finished, first = 0, '-1'
for index = 4, 5 do
  finished = finished + redis.call('ZCOUNT', KEYS[index], ARGV[2], '+inf')
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[index], ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if oldest[2] and (first == '-1' or tonumber(oldest[2]) < tonumber(first)) then first = oldest[2] end
end
return { state, where, tostring(finished), first }
`;

interface PositionCommands {
  genqQueuePosition(...args: Array<string | number>): Promise<string[]>;
}

/** A queued job's place in BullMQ; see {@link QueuePositions.of}. */
export type QueuePosition =
  | {
      /** In line: BullMQ hands out `ahead` jobs of its queue before it (priority, then arrival). */
      state: "waiting";
      ahead: number;
      /** Estimated seconds until a worker takes it; undefined when nothing finished lately. */
      etaSeconds: number | undefined;
    }
  | {
      /** Set aside until `dueAt` (a retry's backoff, a rate-limited provider, its owner at its cap). */
      state: "delayed";
      dueAt: Date;
      /** Seconds until it is back in line (a lower bound of the wait). */
      etaSeconds: number;
    }
  | {
      /** Not in BullMQ: a batch item the fair dispatcher holds back, or one being handed to a worker. */
      state: "held";
    };

/** Options for {@link QueuePositions}. */
export interface QueuePositionsOptions {
  /** A producer connection. */
  connection: Redis;
  /** The queues' Redis key prefix. */
  prefix: string;
  /** The BullMQ queue name of a job type. */
  queueName: (type: JobType) => string;
  /** Throughput is measured over the jobs finished in this window. Default 60 s. */
  windowMs?: number;
  now?: () => number;
}

/**
 * Reads where a queued job stands, from what BullMQ already keeps: the job's rank in
 * the queue's prioritized set (BullMQ's own order: priority, then arrival), and how
 * many jobs of the queue finished in the last minute (the completed and failed sets,
 * scored by when each finished). The ETA is the jobs ahead (plus this one) divided by
 * that rate: it assumes the queue keeps draining as it did. One script per read.
 */
export class QueuePositions {
  readonly #redis: Redis & PositionCommands;
  readonly #prefix: string;
  readonly #queueName: (type: JobType) => string;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(options: QueuePositionsOptions) {
    this.#windowMs = options.windowMs ?? 60_000;
    if (!(Number.isInteger(this.#windowMs) && this.#windowMs >= 1_000))
      throw new RangeError("QueuePositions: windowMs must be an integer of at least 1000");
    options.connection.defineCommand("genqQueuePosition", { lua: POSITION_SCRIPT, numberOfKeys: 5 });
    this.#redis = options.connection as Redis & PositionCommands;
    this.#prefix = options.prefix;
    this.#queueName = options.queueName;
    this.#now = options.now ?? Date.now;
  }

  /** Where job `id` of type `type` stands now. */
  async of(type: JobType, id: string): Promise<QueuePosition> {
    const base = `${this.#prefix}:${this.#queueName(type)}`;
    const now = this.#now();
    const since = now - this.#windowMs;
    const [state, where, finished, first] = await this.#redis.genqQueuePosition(
      `${base}:prioritized`,
      `${base}:wait`,
      `${base}:delayed`,
      `${base}:completed`,
      `${base}:failed`,
      id,
      since,
    );
    if (state === "waiting") {
      const ahead = Number(where);
      const perSecond = rate(Number(finished), Number(first), now);
      return {
        state: "waiting",
        ahead,
        etaSeconds: perSecond > 0 ? Math.ceil((ahead + 1) / perSecond) : undefined,
      };
    }
    if (state === "delayed") {
      // BullMQ scores a delayed job by (due time × 4096 + a counter).
      const dueAt = new Date(Math.floor(Number(where) / 0x1000));
      return { state: "delayed", dueAt, etaSeconds: Math.max(0, Math.ceil((dueAt.getTime() - now) / 1_000)) };
    }
    return { state: "held" };
  }
}

/**
 * Finished jobs per second since the first of them finished (at least a second): a
 * queue that started draining 5 s ago is measured over those 5 s, not the whole window;
 * so is one whose finished set BullMQ trimmed to its kept count.
 */
function rate(count: number, first: number, now: number): number {
  if (count === 0 || first < 0) return 0;
  return count / (Math.max(1_000, now - first) / 1_000);
}
