import { randomBytes } from "node:crypto";
import { GenqError, type GenqEvent, NotFoundError, newId } from "@genq/core";
import type { Database } from "./client.ts";
import type { Prisma, WebhookDelivery, WebhookEndpoint, WebhookMessage } from "./generated/prisma/client.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

/** A webhook endpoint row (its secrets included: callers decide what to show). */
export type WebhookEndpointRecord = WebhookEndpoint;
/** An outbox row. */
export type WebhookMessageRecord = WebhookMessage;
/** A delivery-log row. */
export type WebhookDeliveryRecord = WebhookDelivery;

/** A message with its delivery attempts, newest attempt first. */
export type WebhookMessageWithDeliveries = WebhookMessage & { deliveries: WebhookDelivery[] };

/** The secrets that sign a message: the current one, and the previous one during its grace period. */
export interface SigningSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

/** What a delivery queue job needs to know about a message: its id, owner and target. */
export interface OutboxMessageRef {
  id: string;
  userId: string;
  endpointId: string | null;
  url: string | null;
}

/** What {@link WebhookRepository.writeOutbox} stored. */
export interface OutboxWrite {
  /** Messages to queue once the transaction committed. */
  messages: OutboxMessageRef[];
  /** Stored fan-outs whose endpoint messages are to be written after commit ({@link WebhookRepository.fanOut}). */
  fanouts: string[];
}

/** Events per {@link WebhookRepository.fanOut} transaction: at most this × the endpoint cap messages. */
export const FANOUT_CHUNK = 50;

/** Default of {@link WebhookRepositoryOptions.inlineFanoutLimit}. */
export const DEFAULT_INLINE_FANOUT_LIMIT = 100;

/** An enabled endpoint as the outbox sees it. */
interface SubscribedEndpoint {
  id: string;
  userId: string;
  eventTypes: string[];
  batchItemEvents: boolean;
}

/** The endpoints an event goes to (see {@link WebhookRepository.writeOutbox}). */
function endpointsFor(
  event: Pick<GenqEvent, "type" | "userId" | "jobId" | "batchId">,
  endpoints: readonly SubscribedEndpoint[],
): SubscribedEndpoint[] {
  const batchItem = event.batchId !== null && event.jobId !== null;
  if (batchItem && event.type === "job.canceled") return [];
  return endpoints.filter(
    (endpoint) =>
      endpoint.userId === event.userId &&
      (!batchItem || endpoint.batchItemEvents) &&
      (endpoint.eventTypes.length === 0 || endpoint.eventTypes.includes(event.type)),
  );
}

function toRef(row: Prisma.WebhookMessageCreateManyInput): OutboxMessageRef {
  return {
    id: row.id as string,
    userId: row.userId,
    endpointId: row.endpointId ?? null,
    url: row.url ?? null,
  };
}

/** Everything the delivery processor needs about one message. */
export interface MessageForDelivery {
  message: WebhookMessage;
  /** The endpoint of an endpoint message (null when deleted or for a per-request URL). */
  endpoint: WebhookEndpoint | null;
  /** Where to POST. */
  url: string;
}

/** What one attempt ended in, and what happens to the message next. */
export type AttemptNext =
  | { status: "delivered" }
  | { status: "retry"; at: Date }
  | { status: "failed" }
  | { status: "canceled" };

/** One attempt's record for {@link WebhookRepository.recordAttempt}. */
export interface AttemptRecord {
  messageId: string;
  attempt: number;
  /** 'delivered' | 'failed' | 'timeout' | 'refused' | 'error'. */
  outcome: string;
  responseStatus: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  errorMessage: string | null;
  next: AttemptNext;
  /**
   * The endpoint of an endpoint message: a delivery clears its `failingSince`, any
   * other outcome starts it (if not yet failing).
   */
  endpointId?: string | null | undefined;
}

/** What {@link WebhookRepository.recordAttempt} did. */
export interface RecordedAttempt {
  /** False when the same attempt was logged already (nothing changed). */
  recorded: boolean;
  /** Since when the message's endpoint fails continuously; null when it delivers (or no endpoint). */
  failingSince: Date | null;
}

/** Changes of {@link WebhookRepository.updateEndpoint}. */
export interface EndpointChanges {
  url?: string | undefined;
  description?: string | null | undefined;
  eventTypes?: string[] | undefined;
  /** false re-enables a disabled endpoint; true disables it. */
  disabled?: boolean | undefined;
  /** Whether the `job.*` events of batch items are delivered here. */
  batchItemEvents?: boolean | undefined;
}

/** Default of {@link WebhookRepositoryOptions.maxEndpointsPerUser}. */
export const DEFAULT_MAX_ENDPOINTS_PER_USER = 20;

/** A user already has the most endpoints allowed. */
export class WebhookEndpointLimitError extends GenqError {
  override readonly name = "WebhookEndpointLimitError";
  constructor(readonly limit: number) {
    super(
      "conflict",
      `you already have ${limit} webhook endpoints, the most allowed; delete one ` +
        "(DELETE /v1/webhook-endpoints/:id) or subscribe an existing one to more eventTypes",
      { details: { limit } },
    );
  }
}

/** A page of messages, newest first. */
export interface MessageQuery {
  userId: string;
  endpointId?: string | undefined;
  jobId?: string | undefined;
  batchId?: string | undefined;
  /** The id of the last message of the previous page. */
  cursor?: string | undefined;
  limit: number;
}

/** Options for {@link WebhookRepository}. */
export interface WebhookRepositoryOptions {
  db: Database;
  /**
   * Prefix of the links in payloads (e.g. https://genq.example.com); relative links
   * (`/v1/jobs/:id`) when empty or absent.
   */
  publicUrl?: string | undefined;
  /** The most endpoints a user may have. @defaultValue {@link DEFAULT_MAX_ENDPOINTS_PER_USER} */
  maxEndpointsPerUser?: number | undefined;
  /**
   * The most endpoint messages a finishing transaction writes itself; a transition
   * owing more stores one fan-out row per event instead (written after commit).
   * @defaultValue {@link DEFAULT_INLINE_FANOUT_LIMIT}
   */
  inlineFanoutLimit?: number | undefined;
  now?: () => Date;
}

/** Default grace period of a rotated secret: the old one keeps signing this long. */
export const DEFAULT_SECRET_GRACE_SECONDS = 24 * 3_600;

/** A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** The Standard Webhooks body of an event: type, timestamp and thin data with links. */
export function webhookPayload(event: GenqEvent, publicUrl = ""): Prisma.InputJsonObject {
  const base = publicUrl.replace(/\/$/, "");
  const links: Record<string, string> = {};
  if (event.jobId !== null) links.job = `${base}/v1/jobs/${event.jobId}`;
  if (event.batchId !== null) links.batch = `${base}/v1/batches/${event.batchId}`;
  return {
    type: event.type,
    timestamp: event.timestamp.toISOString(),
    data: { ...event.data, links } as Prisma.InputJsonObject,
  };
}

/**
 * Webhook endpoints, secrets, the outbox and the delivery log. The outbox is
 * written in the transaction that finished the jobs ({@link WebhookRepository.writeOutbox}),
 * so an event is stored exactly once when its transition commits; delivery then
 * moves each message through attempts, one log row per attempt.
 */
export class WebhookRepository {
  readonly #db: Database;
  readonly #publicUrl: string;
  readonly #maxEndpointsPerUser: number;
  readonly #inlineFanoutLimit: number;
  readonly #now: () => Date;

  constructor(options: WebhookRepositoryOptions) {
    this.#db = options.db;
    this.#publicUrl = options.publicUrl ?? "";
    this.#maxEndpointsPerUser = options.maxEndpointsPerUser ?? DEFAULT_MAX_ENDPOINTS_PER_USER;
    if (!Number.isInteger(this.#maxEndpointsPerUser) || this.#maxEndpointsPerUser < 1) {
      throw new RangeError(
        `maxEndpointsPerUser must be a positive integer, got ${this.#maxEndpointsPerUser}`,
      );
    }
    this.#inlineFanoutLimit = options.inlineFanoutLimit ?? DEFAULT_INLINE_FANOUT_LIMIT;
    this.#now = options.now ?? (() => new Date());
  }

  // --- endpoints -------------------------------------------------------------

  /**
   * Creates an endpoint with a fresh secret; {@link WebhookEndpointLimitError} when
   * the user has the most allowed already. The user's row is locked while counting,
   * so concurrent creations cannot pass the cap together.
   */
  createEndpoint(input: {
    userId: string;
    url: string;
    description?: string | undefined;
    eventTypes?: string[] | undefined;
    batchItemEvents?: boolean | undefined;
  }): Promise<WebhookEndpoint> {
    return this.#db.$transaction(async (transaction) => {
      await transaction.$queryRaw`SELECT 1 FROM users WHERE id = ${input.userId}::uuid FOR UPDATE`;
      const count = await transaction.webhookEndpoint.count({ where: { userId: input.userId } });
      if (count >= this.#maxEndpointsPerUser) throw new WebhookEndpointLimitError(this.#maxEndpointsPerUser);
      return transaction.webhookEndpoint.create({
        data: {
          id: newId(),
          userId: input.userId,
          url: input.url,
          description: input.description ?? null,
          eventTypes: [...new Set(input.eventTypes ?? [])],
          batchItemEvents: input.batchItemEvents ?? false,
          secret: newWebhookSecret(),
        },
      });
    });
  }

  /** The user's endpoints, oldest first. */
  listEndpoints(userId: string): Promise<WebhookEndpoint[]> {
    return this.#db.webhookEndpoint.findMany({ where: { userId }, orderBy: { id: "asc" } });
  }

  /** One of the user's endpoints; {@link NotFoundError} for anyone else's. */
  async getEndpoint(userId: string, id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.#db.webhookEndpoint.findFirst({ where: { id, userId } });
    if (endpoint === null) throw new NotFoundError("webhook_endpoint", id);
    return endpoint;
  }

  /** Updates an endpoint; disabling cancels its pending messages. */
  async updateEndpoint(userId: string, id: string, changes: EndpointChanges): Promise<WebhookEndpoint> {
    await this.getEndpoint(userId, id);
    const now = this.#now();
    return this.#db.$transaction(async (transaction) => {
      const updated = await transaction.webhookEndpoint.update({
        where: { id },
        data: {
          ...(changes.url === undefined ? {} : { url: changes.url }),
          ...(changes.description === undefined ? {} : { description: changes.description }),
          ...(changes.eventTypes === undefined ? {} : { eventTypes: [...new Set(changes.eventTypes)] }),
          ...(changes.batchItemEvents === undefined ? {} : { batchItemEvents: changes.batchItemEvents }),
          ...(changes.disabled === undefined
            ? {}
            : changes.disabled
              ? { disabledAt: now, disabledReason: "disabled by the user" }
              : { disabledAt: null, disabledReason: null, failingSince: null }),
        },
      });
      if (changes.disabled === true) {
        await transaction.webhookMessage.updateMany({
          where: { endpointId: id, status: "pending" },
          data: { status: "canceled" },
        });
      }
      return updated;
    });
  }

  /** Deletes an endpoint and (cascade) its messages and log; false when it was not the user's. */
  async deleteEndpoint(userId: string, id: string): Promise<boolean> {
    const deleted = await this.#db.webhookEndpoint.deleteMany({ where: { id, userId } });
    return deleted.count === 1;
  }

  /**
   * Gives an endpoint a new secret; the current one keeps signing (a second
   * signature) for `graceSeconds`, so receivers can switch without losing events.
   */
  async rotateEndpointSecret(
    userId: string,
    id: string,
    graceSeconds = DEFAULT_SECRET_GRACE_SECONDS,
  ): Promise<WebhookEndpoint> {
    const endpoint = await this.getEndpoint(userId, id);
    return this.#db.webhookEndpoint.update({
      where: { id: endpoint.id },
      data: {
        secret: newWebhookSecret(),
        previousSecret: graceSeconds > 0 ? endpoint.secret : null,
        previousSecretExpiresAt:
          graceSeconds > 0 ? new Date(this.#now().getTime() + graceSeconds * 1_000) : null,
      },
    });
  }

  /**
   * Turns an endpoint off (it answered 410 Gone, or kept failing), cancels its
   * pending messages and tells the owner: a `webhook_endpoint.disabled` event to
   * the user's other endpoints, in the same transaction. Returns the messages of
   * that event (none when the endpoint was disabled already), for the caller to queue.
   */
  async disableEndpoint(id: string, reason: string): Promise<OutboxMessageRef[]> {
    const now = this.#now();
    return this.#db.$transaction(async (transaction) => {
      const [endpoint] = await transaction.webhookEndpoint.updateManyAndReturn({
        where: { id, disabledAt: null },
        data: { disabledAt: now, disabledReason: reason },
      });
      if (endpoint === undefined) return [];
      await transaction.webhookMessage.updateMany({
        where: { endpointId: id, status: "pending" },
        data: { status: "canceled" },
      });
      const { messages } = await this.writeOutbox(transaction, [
        {
          type: "webhook_endpoint.disabled",
          userId: endpoint.userId,
          jobId: null,
          batchId: null,
          webhookUrl: null,
          timestamp: now,
          data: {
            id: endpoint.id,
            object: "webhook_endpoint",
            url: endpoint.url,
            disabledAt: now.toISOString(),
            disabledReason: reason,
            failingSince: endpoint.failingSince?.toISOString() ?? null,
          },
        },
      ]);
      // One event to at most the endpoint cap: always written inline.
      return messages;
    });
  }

  // --- the user's secret (per-request URLs) ------------------------------------

  /** The secret that signs the user's per-request webhooks, created on first use. */
  async userSecret(userId: string): Promise<SigningSecrets> {
    const select = { webhookSecret: true, webhookPreviousSecret: true, webhookPreviousSecretExpiresAt: true };
    let user = await this.#db.user.findUnique({ where: { id: userId }, select });
    if (user === null) throw new NotFoundError("user", userId);
    if (user.webhookSecret === null) {
      // Conditional: two first uses racing keep one secret.
      await this.#db.user.updateMany({
        where: { id: userId, webhookSecret: null },
        data: { webhookSecret: newWebhookSecret() },
      });
      user = await this.#db.user.findUniqueOrThrow({ where: { id: userId }, select });
    }
    return {
      secret: user.webhookSecret as string,
      previousSecret: user.webhookPreviousSecret,
      previousSecretExpiresAt: user.webhookPreviousSecretExpiresAt,
    };
  }

  /** A new user secret; the current one keeps signing for `graceSeconds`. */
  async rotateUserSecret(
    userId: string,
    graceSeconds = DEFAULT_SECRET_GRACE_SECONDS,
  ): Promise<SigningSecrets> {
    const current = await this.userSecret(userId);
    const updated = await this.#db.user.update({
      where: { id: userId },
      data: {
        webhookSecret: newWebhookSecret(),
        webhookPreviousSecret: graceSeconds > 0 ? current.secret : null,
        webhookPreviousSecretExpiresAt:
          graceSeconds > 0 ? new Date(this.#now().getTime() + graceSeconds * 1_000) : null,
      },
    });
    return {
      secret: updated.webhookSecret as string,
      previousSecret: updated.webhookPreviousSecret,
      previousSecretExpiresAt: updated.webhookPreviousSecretExpiresAt,
    };
  }

  // --- the outbox ----------------------------------------------------------------

  /**
   * Stores the events' messages inside the finishing transaction: one for the
   * per-request URL, plus one per enabled endpoint of the user subscribed to the
   * type (empty `eventTypes` = all). The `job.*` events of batch items go only to
   * endpoints that opted in (`batchItemEvents`), and a batch item's `job.canceled`
   * to none: a batch cancel finishes thousands of items at once, and its
   * `batch.completed` (status `canceled`, with counts) reports them.
   *
   * When the endpoint messages would be more than the inline limit (a bulk
   * transition), the transaction stores one `webhook_fanouts` row per event
   * instead, and {@link WebhookRepository.fanOut} writes the messages after commit
   * in bounded chunks. One endpoints query for all the users, one insert per table.
   */
  async writeOutbox(
    transaction: Prisma.TransactionClient,
    events: readonly GenqEvent[],
  ): Promise<OutboxWrite> {
    if (events.length === 0) return { messages: [], fanouts: [] };
    const endpoints = await this.#subscribers(transaction, events);
    const urlRows: Prisma.WebhookMessageCreateManyInput[] = [];
    const endpointRows: Prisma.WebhookMessageCreateManyInput[] = [];
    const fanouts: Prisma.WebhookFanoutCreateManyInput[] = [];
    for (const event of events) {
      const payload = webhookPayload(event, this.#publicUrl);
      if (event.webhookUrl !== null)
        urlRows.push({ ...this.#message(event, payload), url: event.webhookUrl });
      const targets = endpointsFor(event, endpoints);
      if (targets.length === 0) continue;
      fanouts.push({
        id: newId(),
        userId: event.userId,
        eventType: event.type,
        payload,
        jobId: event.jobId,
        batchId: event.batchId,
      });
      for (const endpoint of targets)
        endpointRows.push({ ...this.#message(event, payload), endpointId: endpoint.id });
    }
    const inline = endpointRows.length <= this.#inlineFanoutLimit;
    const rows = inline ? [...urlRows, ...endpointRows] : urlRows;
    if (rows.length > 0) await transaction.webhookMessage.createMany({ data: rows });
    if (!inline) await transaction.webhookFanout.createMany({ data: fanouts });
    return { messages: rows.map(toRef), fanouts: inline ? [] : fanouts.map((fanout) => fanout.id as string) };
  }

  /**
   * Writes the endpoint messages of stored fan-outs (at most {@link FANOUT_CHUNK}
   * events per call) and deletes them, in one transaction: each is fanned out
   * exactly once, however many processes try. Returns the new messages.
   */
  async fanOut(ids: readonly string[]): Promise<OutboxMessageRef[]> {
    if (ids.length === 0) return [];
    if (ids.length > FANOUT_CHUNK) throw new RangeError(`fan out at most ${FANOUT_CHUNK} events at once`);
    return this.#db.$transaction(async (transaction) => {
      const taken = await transaction.$queryRaw<
        Array<{
          id: string;
          user_id: string;
          event_type: string;
          payload: Prisma.JsonValue;
          job_id: string | null;
          batch_id: string | null;
          created_at: Date;
        }>
      >`DELETE FROM webhook_fanouts WHERE id = ANY(${[...ids]}::uuid[])
        RETURNING id, user_id, event_type, payload, job_id, batch_id, created_at`;
      if (taken.length === 0) return [];
      const events = taken.map((row) => ({
        type: row.event_type as GenqEvent["type"],
        userId: row.user_id,
        jobId: row.job_id,
        batchId: row.batch_id,
        payload: row.payload as Prisma.InputJsonObject,
        createdAt: row.created_at,
      }));
      const endpoints = await this.#subscribers(transaction, events);
      const rows: Prisma.WebhookMessageCreateManyInput[] = [];
      for (const event of events) {
        for (const endpoint of endpointsFor(event, endpoints)) {
          rows.push({
            id: newId(),
            userId: event.userId,
            eventType: event.type,
            payload: event.payload,
            jobId: event.jobId,
            batchId: event.batchId,
            nextAttemptAt: this.#now(),
            endpointId: endpoint.id,
          });
        }
      }
      if (rows.length > 0) await transaction.webhookMessage.createMany({ data: rows });
      return rows.map(toRef);
    });
  }

  /** Fan-outs stored before `before` (their committer did not get to them), oldest first. */
  async pendingFanouts(before: Date, limit: number): Promise<string[]> {
    const rows = await this.#db.webhookFanout.findMany({
      where: { createdAt: { lt: before } },
      orderBy: { createdAt: "asc" },
      take: limit,
      select: { id: true },
    });
    return rows.map((row) => row.id);
  }

  /** The enabled endpoints of the events' users. */
  #subscribers(
    transaction: Prisma.TransactionClient,
    events: ReadonlyArray<{ userId: string }>,
  ): Promise<SubscribedEndpoint[]> {
    const userIds = [...new Set(events.map((event) => event.userId))];
    return transaction.webhookEndpoint.findMany({
      where: { userId: { in: userIds }, disabledAt: null },
      select: { id: true, userId: true, eventTypes: true, batchItemEvents: true },
    });
  }

  #message(event: GenqEvent, payload: Prisma.InputJsonObject) {
    return {
      id: newId(),
      userId: event.userId,
      eventType: event.type,
      payload,
      jobId: event.jobId,
      batchId: event.batchId,
      nextAttemptAt: this.#now(),
    };
  }

  // --- delivery ------------------------------------------------------------------

  /** A message with its target, or null when it no longer exists (endpoint deleted). */
  async findForDelivery(messageId: string): Promise<MessageForDelivery | null> {
    const message = await this.#db.webhookMessage.findUnique({
      where: { id: messageId },
      include: { endpoint: true },
    });
    if (message === null) return null;
    const { endpoint, ...row } = message;
    const url = endpoint?.url ?? row.url;
    if (url === null) return null;
    return { message: row, endpoint, url };
  }

  /**
   * Claims attempt `attempt` of a pending message (its previous attempt count must
   * be `attempt - 1`), and leases it until `leaseUntil` so the relay leaves it alone
   * while the request runs. False when another delivery got there first.
   */
  async claimAttempt(messageId: string, attempt: number, leaseUntil: Date): Promise<boolean> {
    const claimed = await this.#db.webhookMessage.updateMany({
      where: { id: messageId, status: "pending", attempts: attempt - 1 },
      data: { attempts: attempt, lastAttemptAt: this.#now(), nextAttemptAt: leaseUntil },
    });
    return claimed.count === 1;
  }

  /**
   * How many attempts in a row, counted back from the newest, were not delivered
   * (at most `limit`): the position in the retry schedule.
   */
  async failuresInARow(messageId: string, limit: number): Promise<number> {
    const rows = await this.#db.webhookDelivery.findMany({
      where: { messageId },
      orderBy: { attempt: "desc" },
      take: limit,
      select: { outcome: true },
    });
    const index = rows.findIndex((row) => row.outcome === "delivered");
    return index === -1 ? rows.length : index;
  }

  /**
   * Writes the log row of an attempt and moves the message on, in one
   * transaction. A duplicate (the same attempt logged already) changes nothing.
   */
  async recordAttempt(record: AttemptRecord): Promise<RecordedAttempt> {
    const now = this.#now();
    try {
      return await this.#db.$transaction(async (transaction) => {
        await transaction.webhookDelivery.create({
          data: {
            id: newId(),
            messageId: record.messageId,
            attempt: record.attempt,
            outcome: record.outcome,
            responseStatus: record.responseStatus,
            latencyMs: record.latencyMs,
            responseExcerpt: record.responseExcerpt,
            errorMessage: record.errorMessage,
          },
        });
        const next = record.next;
        await transaction.webhookMessage.updateMany({
          where: { id: record.messageId, status: "pending", attempts: record.attempt },
          data:
            next.status === "delivered"
              ? { status: "delivered", deliveredAt: now }
              : next.status === "retry"
                ? { nextAttemptAt: next.at }
                : { status: next.status },
        });
        if (record.endpointId == null) return { recorded: true, failingSince: null };
        if (record.outcome === "delivered") {
          await transaction.webhookEndpoint.updateMany({
            where: { id: record.endpointId, failingSince: { not: null } },
            data: { failingSince: null },
          });
          return { recorded: true, failingSince: null };
        }
        await transaction.webhookEndpoint.updateMany({
          where: { id: record.endpointId, failingSince: null },
          data: { failingSince: now },
        });
        const endpoint = await transaction.webhookEndpoint.findUnique({
          where: { id: record.endpointId },
          select: { failingSince: true },
        });
        return { recorded: true, failingSince: endpoint?.failingSince ?? null };
      });
    } catch (error) {
      if (isUniqueViolation(error)) return { recorded: false, failingSince: null };
      throw error;
    }
  }

  /** Cancels a pending message (its endpoint is gone or disabled). */
  async cancelMessage(messageId: string): Promise<void> {
    await this.#db.webhookMessage.updateMany({
      where: { id: messageId, status: "pending" },
      data: { status: "canceled" },
    });
  }

  /** Pending messages whose next attempt is due, oldest first: what the relay enqueues. */
  dueMessages(
    limit: number,
    now: Date = this.#now(),
  ): Promise<Array<OutboxMessageRef & { attempts: number }>> {
    return this.#db.webhookMessage.findMany({
      where: { status: "pending", nextAttemptAt: { lte: now } },
      orderBy: { nextAttemptAt: "asc" },
      take: limit,
      select: { id: true, attempts: true, userId: true, endpointId: true, url: true },
    });
  }

  // --- reading and redelivery -------------------------------------------------------

  /** The user's messages, newest first, with their attempts (newest first). */
  listMessages(query: MessageQuery): Promise<WebhookMessageWithDeliveries[]> {
    return this.#db.webhookMessage.findMany({
      where: {
        userId: query.userId,
        ...(query.endpointId === undefined ? {} : { endpointId: query.endpointId }),
        ...(query.jobId === undefined ? {} : { jobId: query.jobId }),
        ...(query.batchId === undefined ? {} : { batchId: query.batchId }),
        ...(query.cursor === undefined ? {} : { id: { lt: query.cursor } }),
      },
      orderBy: { id: "desc" },
      take: query.limit,
      include: { deliveries: { orderBy: { attempt: "desc" } } },
    });
  }

  /** One of the user's messages with its attempts. */
  async getMessage(userId: string, id: string): Promise<WebhookMessageWithDeliveries> {
    const message = await this.#db.webhookMessage.findFirst({
      where: { id, userId },
      include: { deliveries: { orderBy: { attempt: "desc" } } },
    });
    if (message === null) throw new NotFoundError("webhook_message", id);
    return message;
  }

  /**
   * Sends a message again (same id, so the same `webhook-id`): it becomes pending
   * with its next attempt due now, and gets a fresh retry schedule. A message
   * still pending is already on its way (409); one whose endpoint is disabled is
   * refused until the endpoint is enabled again.
   */
  async redeliver(userId: string, id: string): Promise<WebhookMessageWithDeliveries> {
    const message = await this.#db.webhookMessage.findFirst({
      where: { id, userId },
      include: { endpoint: { select: { disabledAt: true } } },
    });
    if (message === null) throw new NotFoundError("webhook_message", id);
    if (message.status === "pending") {
      throw new GenqError(
        "conflict",
        `webhook message ${id} is still pending; its next attempt is scheduled`,
        {
          details: { id, status: message.status, nextAttemptAt: message.nextAttemptAt.toISOString() },
        },
      );
    }
    if (message.endpoint?.disabledAt != null) {
      throw new GenqError("conflict", `the endpoint of webhook message ${id} is disabled; enable it first`, {
        details: { id, endpointId: message.endpointId },
      });
    }
    await this.#db.webhookMessage.updateMany({
      where: { id, status: message.status },
      data: { status: "pending", nextAttemptAt: this.#now() },
    });
    return this.getMessage(userId, id);
  }
}
