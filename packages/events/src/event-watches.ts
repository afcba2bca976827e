import { randomUUID } from "node:crypto";
import { once } from "node:events";
import type { Redis } from "ioredis";
import type { EventSubject } from "./live-event.ts";

/** Options for {@link EventWatches}. */
export interface EventWatchesOptions {
  /** A producer connection: announcements, acknowledgements, the snapshot read. */
  redis: Redis;
  /** A connection of its own in subscriber mode (the caller creates and closes it). */
  subscriber: Redis;
  /** The queue prefix; keys and channels are `<prefix>:events:watch…`. */
  prefix: string;
  /**
   * A watch lapses this long after it was announced or last renewed; listeners renew
   * every third of it. A process that missed the announcement learns it at the latest
   * from the snapshot it reads when (re)subscribing.
   * @defaultValue 30000
   */
  leaseMs?: number;
  /**
   * How long {@link EventWatches.watch} waits for every subscribed process to
   * acknowledge an announcement before it gives up waiting (the listener then relies
   * on its row checks, as when a publish is lost).
   * @defaultValue 2000
   */
  ackTimeoutMs?: number;
  /** Called when a message or a snapshot read fails (best effort, never throws). */
  onError?: (error: unknown) => void;
}

/**
 * Records a watch in the snapshot set and announces it, in one round trip.
 * KEYS[1] the snapshot set; ARGV: now (ms), lease ms, subject, channel, message.
 * Returns how many subscribers received the announcement (PUBLISH's reply).
 */
const WATCH_SCRIPT = `
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], 'GT', now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease * 2)
return redis.call('PUBLISH', ARGV[4], ARGV[5])
`;

interface WatchCommands {
  genqEventsWatch(key: string, ...args: Array<string | number>): Promise<number>;
}

interface PendingWatch {
  expected: number | undefined;
  received: number;
  resolve: (confirmed: boolean) => void;
}

interface Announcement {
  /** The subject, `job:<id>` or `batch:<id>`. */
  s: string;
  /** Lease ms. */
  l: number;
  /** The channel to acknowledge on. */
  a: string;
  /** The nonce to acknowledge with. */
  n: string;
}

/**
 * Who listens to which job's or batch's live events, known locally by every process
 * that publishes them, so that an event nobody listens to costs no Redis command.
 *
 * A listener (an SSE session in an API process) announces its subject with
 * {@link watch}: one script adds it to a snapshot set (scored by when the watch
 * lapses) and publishes it on a pub/sub channel every publishing process subscribes
 * to. Each subscriber adds the subject to its local map and acknowledges on the
 * announcer's own channel; `watch` resolves once as many acknowledgements came back
 * as PUBLISH reported receivers. From then on every publishing process knows the
 * subject is watched, so a transition committed after that moment is published:
 * a listener that reads the subject's row after `watch` resolved and finds it not
 * finished is sure to get the terminal event through the stream. A process that
 * starts (or reconnects) subscribes first and then reads the snapshot set, so it
 * misses no watch either way.
 */
/** How long loading the current watches waits for a connection that is still connecting. */
const SNAPSHOT_READY_TIMEOUT_MS = 5_000;

export class EventWatches {
  readonly #redis: Redis & WatchCommands;
  readonly #subscriber: Redis;
  readonly #setKey: string;
  readonly #channel: string;
  readonly #ackChannel: string;
  readonly #onError: (error: unknown) => void;
  readonly leaseMs: number;
  readonly ackTimeoutMs: number;
  /** Subject → when its watch lapses (this process's clock, or the announcer's for snapshot entries). */
  readonly #watched = new Map<string, number>();
  readonly #pending = new Map<string, PendingWatch>();
  #started = false;
  /** Settles once subscribed and the snapshot is read. */
  #ready: Promise<void> | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  readonly #onMessage = (channel: string, message: string) => this.#receive(channel, message);
  readonly #onReady = () => void this.#loadSnapshot();

  constructor(options: EventWatchesOptions) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 2_000;
    if (!(Number.isInteger(this.leaseMs) && this.leaseMs >= 1_000))
      throw new RangeError("EventWatches: leaseMs must be an integer of at least 1000");
    if (!(Number.isInteger(this.ackTimeoutMs) && this.ackTimeoutMs >= 0))
      throw new RangeError("EventWatches: ackTimeoutMs must be a whole number of ms");
    options.redis.defineCommand("genqEventsWatch", { lua: WATCH_SCRIPT, numberOfKeys: 1 });
    this.#redis = options.redis as Redis & WatchCommands;
    this.#subscriber = options.subscriber;
    this.#setKey = `${options.prefix}:events:watches`;
    this.#channel = `${options.prefix}:events:watch`;
    this.#ackChannel = `${options.prefix}:events:watch-ack:${randomUUID()}`;
    this.#onError = options.onError ?? (() => {});
  }

  /**
   * Subscribes to announcements, then reads the watches already in force. Call once
   * before publishing; also reloads the snapshot whenever the subscriber reconnects.
   */
  start(): Promise<void> {
    this.#ready ??= this.#start();
    return this.#ready;
  }

  async #start(): Promise<void> {
    this.#started = true;
    this.#subscriber.on("message", this.#onMessage);
    await this.#subscriber.subscribe(this.#channel, this.#ackChannel);
    await this.#loadSnapshot();
    // ioredis resubscribes after a reconnect; announcements sent meanwhile are in the snapshot.
    this.#subscriber.on("ready", this.#onReady);
    this.#pruneTimer = setInterval(() => this.#prune(), this.leaseMs);
    this.#pruneTimer.unref();
  }

  /** Whether someone listens to `subject` (a local lookup, no Redis command). */
  isWatched(subject: EventSubject): boolean {
    const key = subjectKey(subject);
    const until = this.#watched.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#watched.delete(key);
    return false;
  }

  /**
   * Announces that this process listens to `subject` for the next lease (also how a
   * listener renews it). Resolves true once every process subscribed at that moment
   * acknowledged it, false when some did not within `ackTimeoutMs`. Rejects when
   * Redis cannot be reached.
   */
  async watch(subject: EventSubject): Promise<boolean> {
    if (this.#ready === undefined) throw new Error("EventWatches: start() first");
    // Not subscribed yet (an API that started while Redis was away): our own acknowledgement
    // could not come back. Wait for it a little; unconfirmed beyond that.
    if (!(await settlesWithin(this.#ready, this.ackTimeoutMs))) return false;
    const nonce = randomUUID();
    const subjectName = subjectKey(subject);
    const announcement: Announcement = { s: subjectName, l: this.leaseMs, a: this.#ackChannel, n: nonce };
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<boolean>((resolve) => {
      this.#pending.set(nonce, { expected: undefined, received: 0, resolve });
      timer = setTimeout(() => resolve(false), this.ackTimeoutMs);
    });
    try {
      const receivers = await this.#redis.genqEventsWatch(
        this.#setKey,
        Date.now(),
        this.leaseMs,
        subjectName,
        this.#channel,
        JSON.stringify(announcement),
      );
      const pending = this.#pending.get(nonce);
      if (pending !== undefined) {
        pending.expected = Number(receivers);
        if (pending.received >= pending.expected) pending.resolve(true);
      }
      return await confirmed;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(nonce);
    }
  }

  /** Stops listening to announcements. */
  async close(): Promise<void> {
    clearInterval(this.#pruneTimer);
    this.#pruneTimer = undefined;
    if (!this.#started) return;
    this.#started = false;
    this.#ready = undefined;
    this.#subscriber.off("message", this.#onMessage);
    this.#subscriber.off("ready", this.#onReady);
    for (const pending of this.#pending.values()) pending.resolve(false);
    if (this.#subscriber.status === "ready") {
      await this.#subscriber.unsubscribe(this.#channel, this.#ackChannel).catch(this.#onError);
    }
  }

  #receive(channel: string, message: string): void {
    if (channel === this.#ackChannel) {
      const pending = this.#pending.get(message);
      if (pending === undefined) return;
      pending.received += 1;
      if (pending.expected !== undefined && pending.received >= pending.expected) pending.resolve(true);
      return;
    }
    if (channel !== this.#channel) return;
    let announcement: Announcement;
    try {
      announcement = JSON.parse(message) as Announcement;
    } catch (error) {
      this.#onError(error);
      return;
    }
    if (typeof announcement.s !== "string" || typeof announcement.l !== "number") return;
    this.#extend(announcement.s, Date.now() + announcement.l);
    // Acknowledged after the map holds it: the announcer's wait means "every publisher knows".
    if (typeof announcement.a === "string" && typeof announcement.n === "string") {
      this.#redis.publish(announcement.a, announcement.n).catch(this.#onError);
    }
  }

  async #loadSnapshot(): Promise<void> {
    try {
      // The shared connection may still be connecting when the process starts (it queues
      // no command meanwhile): wait for it, briefly, rather than miss the current watches.
      if (this.#redis.status !== "ready") {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          once(this.#redis, "ready"),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("Redis not ready")), SNAPSHOT_READY_TIMEOUT_MS);
          }),
        ]).finally(() => clearTimeout(timer));
      }
      const entries = await this.#redis.zrangebyscore(this.#setKey, Date.now(), "+inf", "WITHSCORES");
      for (let index = 0; index + 1 < entries.length; index += 2) {
        this.#extend(entries[index] ?? "", Number(entries[index + 1]));
      }
    } catch (error) {
      this.#onError(error);
    }
  }

  #extend(subject: string, until: number): void {
    if (subject === "" || !Number.isFinite(until)) return;
    if ((this.#watched.get(subject) ?? 0) < until) this.#watched.set(subject, until);
  }

  #prune(): void {
    const now = Date.now();
    for (const [subject, until] of this.#watched) if (until <= now) this.#watched.delete(subject);
  }
}

/** True when `promise` fulfils within `timeoutMs`; false when it rejects or takes longer. */
async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function subjectKey(subject: EventSubject): string {
  return `${subject.kind}:${subject.id}`;
}
