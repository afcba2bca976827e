import type { Redis } from "ioredis";
import { eventStreamKey } from "./event-keys.ts";
import { type EventSubject, isTerminalEventType, type LiveEvent } from "./live-event.ts";

/** Options for {@link EventLog}. */
export interface EventLogOptions {
  /** A producer connection (fails fast while Redis is down): appends and non-blocking reads. */
  redis: Redis;
  /** The queue prefix; keys are `<prefix>:events:job:<id>` and `<prefix>:events:batch:<id>`. */
  prefix: string;
  /** About this many entries are kept per stream (`XADD MAXLEN ~`); default 1,000. */
  maxLength?: number;
  /** A stream expires this long after its last append; default one hour. */
  retentionMs?: number;
  /**
   * A stream expires this long after its terminal event (default five minutes, at most
   * `retentionMs`): late clients get the terminal event from the row, and a busy system
   * does not keep a stream per finished job for the full retention.
   */
  finishedRetentionMs?: number;
}

/** One event to append. */
export interface EventAppend {
  subject: EventSubject;
  type: string;
  data: Record<string, unknown>;
}

/** Options of {@link EventLog.read}. */
export interface EventReadOptions {
  /** At most this many entries; default 100. */
  count?: number;
  /** Wait up to this long for an entry when none is there yet (needs a dedicated `connection`). */
  blockMs?: number;
  /** The connection to read on; blocking reads must not share the producer connection. */
  connection?: Redis;
}

/**
 * KEYS: one stream per event; ARGV[1] max length, then per event: type, data, retention ms,
 * and "1" when the event is skipped if the stream's newest entry is the same (type and data).
 * Returns the entry ids (false for a skipped event).
 */
const APPEND_SCRIPT = `
local ids = {}
for index = 1, #KEYS do
  local base = 1 + (index - 1) * 4
  local repeated = false
  if ARGV[base + 4] == '1' then
    local newest = redis.call('XREVRANGE', KEYS[index], '+', '-', 'COUNT', 1)[1]
    repeated = newest ~= nil and newest[2][2] == ARGV[base + 1] and newest[2][4] == ARGV[base + 2]
  end
  if repeated then
    ids[index] = false
  else
    ids[index] = redis.call('XADD', KEYS[index], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[base + 1], 'data', ARGV[base + 2])
    redis.call('PEXPIRE', KEYS[index], ARGV[base + 3])
  end
end
return ids
`;

/**
 * Events appended at most once in a row: a listener that joins a running job appends its
 * `job.started` from the row (appendIfEmpty) while the worker, which saw the watch just
 * after the claim, publishes the same event; the second is the same entry again.
 */
const ONCE_IN_A_ROW = new Set(["job.started"]);

/** KEYS[1] the stream; ARGV: max length, type, data, retention ms. Returns the id, or nil when not empty. */
const APPEND_IF_EMPTY_SCRIPT = `
if redis.call('XLEN', KEYS[1]) > 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return id
`;

interface EventLogCommands {
  genqEventsAppend(numberOfKeys: number, ...args: Array<string | number>): Promise<Array<string | null>>;
  genqEventsAppendIfEmpty(key: string, ...args: Array<string | number>): Promise<string | null>;
}

type XReadReply = Array<[key: string, entries: Array<[id: string, fields: string[]]>]> | null;

/**
 * A bounded, expiring log of events per job and per batch in Redis streams. Entry
 * ids are the SSE event ids, so reading after a client's `Last-Event-ID` resumes
 * exactly: no gap, no duplicate (within the retention and length bounds).
 */
export class EventLog {
  readonly prefix: string;
  readonly maxLength: number;
  readonly retentionMs: number;
  readonly finishedRetentionMs: number;
  /** The producer connection (appends, non-blocking reads, small commands such as gates). */
  readonly redis: Redis;
  readonly #redis: Redis & EventLogCommands;

  constructor(options: EventLogOptions) {
    this.redis = options.redis;
    options.redis.defineCommand("genqEventsAppend", { lua: APPEND_SCRIPT });
    options.redis.defineCommand("genqEventsAppendIfEmpty", { lua: APPEND_IF_EMPTY_SCRIPT, numberOfKeys: 1 });
    this.#redis = options.redis as Redis & EventLogCommands;
    this.prefix = options.prefix;
    this.maxLength = options.maxLength ?? 1_000;
    this.retentionMs = options.retentionMs ?? 3_600_000;
    this.finishedRetentionMs = Math.min(options.finishedRetentionMs ?? 300_000, this.retentionMs);
    if (!(Number.isInteger(this.maxLength) && this.maxLength >= 1)) {
      throw new RangeError("EventLog: maxLength must be a positive integer");
    }
    if (!(Number.isInteger(this.retentionMs) && this.retentionMs >= 1_000)) {
      throw new RangeError("EventLog: retentionMs must be an integer of at least 1000");
    }
    if (!(Number.isInteger(this.finishedRetentionMs) && this.finishedRetentionMs >= 1_000)) {
      throw new RangeError("EventLog: finishedRetentionMs must be an integer of at least 1000");
    }
  }

  /** The stream key of a job or batch. */
  key(subject: EventSubject): string {
    return eventStreamKey(this.prefix, subject);
  }

  /**
   * Appends events in order, in one script (one round trip, atomic): each
   * `XADD key MAXLEN ~ n * type t data json` followed by a `PEXPIRE` that restarts
   * the stream's retention (the shorter finished retention after a terminal event).
   * A `job.started` identical to the stream's newest entry is not appended again.
   * Returns the ids of the entries appended.
   */
  async append(events: readonly EventAppend[]): Promise<string[]> {
    if (events.length === 0) return [];
    const keys: string[] = [];
    const args: Array<string | number> = [this.maxLength];
    for (const event of events) {
      keys.push(this.key(event.subject));
      args.push(
        event.type,
        JSON.stringify(event.data),
        isTerminalEventType(event.type) ? this.finishedRetentionMs : this.retentionMs,
        ONCE_IN_A_ROW.has(event.type) ? 1 : 0,
      );
    }
    const ids = await this.#redis.genqEventsAppend(keys.length, ...keys, ...args);
    return ids.flatMap((id) => (typeof id === "string" ? [id] : []));
  }

  /**
   * Appends `event` only while the subject's stream holds no entry (one script), so
   * a listener's snapshot of the current state never lands after an event a
   * publisher appended meanwhile. Returns the entry id, or undefined when the
   * stream already had entries.
   */
  async appendIfEmpty(event: EventAppend): Promise<string | undefined> {
    const id = await this.#redis.genqEventsAppendIfEmpty(
      this.key(event.subject),
      this.maxLength,
      event.type,
      JSON.stringify(event.data),
      isTerminalEventType(event.type) ? this.finishedRetentionMs : this.retentionMs,
    );
    return id === null ? undefined : String(id);
  }

  /** The events after `afterId` (exclusive; `"0"` reads from the start), oldest first. */
  async read(subject: EventSubject, afterId: string, options: EventReadOptions = {}): Promise<LiveEvent[]> {
    const connection = options.connection ?? this.redis;
    const count = String(options.count ?? 100);
    const key = this.key(subject);
    const reply = (
      options.blockMs === undefined
        ? await connection.xread("COUNT", count, "STREAMS", key, afterId)
        : await connection.xread("COUNT", count, "BLOCK", String(options.blockMs), "STREAMS", key, afterId)
    ) as XReadReply;
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => toLiveEvent(id, fields));
  }

  /**
   * A connection of its own for one reader's blocking reads (`XREAD BLOCK`), connected
   * and ready; the caller disconnects it when done (which also ends a pending read).
   */
  async openReader(connectionName = "genq-events-reader"): Promise<Redis> {
    const connection = this.redis.duplicate({
      connectionName,
      lazyConnect: true,
      // A lost connection ends the client's stream (it reconnects with Last-Event-ID).
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    connection.on("error", () => {});
    try {
      await connection.connect();
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    return connection;
  }
}

function toLiveEvent(id: string, fields: string[]): LiveEvent {
  let type = "message";
  let data: Record<string, unknown> = {};
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const field = fields[index];
    const value = fields[index + 1] ?? "";
    if (field === "type") type = value;
    else if (field === "data") {
      try {
        const parsed: unknown = JSON.parse(value);
        if (typeof parsed === "object" && parsed !== null) data = parsed as Record<string, unknown>;
      } catch {
        data = {};
      }
    }
  }
  return { id, type, data };
}
