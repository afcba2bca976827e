import { randomBytes } from "node:crypto";
import type { GenqEvent } from "@genq/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountRepository } from "./account-repository.ts";
import { createPrismaClient, type Database } from "./client.ts";
import type { Prisma } from "./generated/prisma/client.ts";
import { createTestDatabase, type TestDatabase } from "./testing/index.ts";
import { WebhookRepository } from "./webhook-repository.ts";

let database: TestDatabase;
let db: Database;
let webhooks: WebhookRepository;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  webhooks = new WebhookRepository({ db, publicUrl: "https://genq.example.com/" });
  accounts = new AccountRepository({ db });
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
});

async function createUser(): Promise<string> {
  const { user } = await accounts.createUser({
    email: `${randomBytes(6).toString("hex")}@example.com`,
    plan: "basic",
  });
  return user.id;
}

function jobEvent(userId: string, type: GenqEvent["type"], webhookUrl: string | null = null): GenqEvent {
  const jobId = "0195f0c2-0000-7000-8000-000000000001";
  return {
    type,
    userId,
    jobId,
    batchId: null,
    webhookUrl,
    timestamp: new Date(),
    data: { id: jobId, status: "x" },
  };
}

/** A transaction client that counts the queries made through it. */
function counting(transaction: Prisma.TransactionClient, calls: string[]): Prisma.TransactionClient {
  return new Proxy(transaction, {
    get(target, model: string) {
      const delegate = Reflect.get(target, model) as object;
      if (typeof delegate !== "object" || delegate === null) return delegate;
      return new Proxy(delegate, {
        get(inner, method: string) {
          const value = Reflect.get(inner, method) as unknown;
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            calls.push(`${model}.${method}`);
            return (value as (...inner: unknown[]) => unknown).apply(inner, args);
          };
        },
      });
    },
  });
}

describe("WebhookRepository", () => {
  it("writes one message per subscribed enabled endpoint and per-request URL, in two queries", async () => {
    const alice = await createUser();
    const bob = await createUser();
    const all = await webhooks.createEndpoint({ userId: alice, url: "https://a.example.com/all" });
    const failedOnly = await webhooks.createEndpoint({
      userId: alice,
      url: "https://a.example.com/failed",
      eventTypes: ["job.failed"],
    });
    const disabled = await webhooks.createEndpoint({ userId: alice, url: "https://a.example.com/off" });
    await webhooks.updateEndpoint(alice, disabled.id, { disabled: true });
    const bobs = await webhooks.createEndpoint({ userId: bob, url: "https://b.example.com/" });

    const calls: string[] = [];
    const written = await db.$transaction((transaction) =>
      webhooks.writeOutbox(counting(transaction, calls), [
        jobEvent(alice, "job.completed", "https://a.example.com/per-request"),
        jobEvent(alice, "job.failed"),
        jobEvent(bob, "job.canceled"),
      ]),
    );
    expect(calls).toEqual(["webhookEndpoint.findMany", "webhookMessage.createMany"]);
    const messages = await db.webhookMessage.findMany({
      where: { id: { in: written.messages.map((message) => message.id) } },
    });
    const targets = messages
      .map((message) => `${message.eventType}→${message.endpointId ?? message.url}`)
      .sort();
    expect(targets).toEqual(
      [
        `job.completed→https://a.example.com/per-request`,
        `job.completed→${all.id}`,
        `job.failed→${all.id}`,
        `job.failed→${failedOnly.id}`,
        `job.canceled→${bobs.id}`,
      ].sort(),
    );
    expect(messages[0]?.payload).toMatchObject({
      data: { links: { job: "https://genq.example.com/v1/jobs/0195f0c2-0000-7000-8000-000000000001" } },
    });
    expect(messages.every((message) => message.status === "pending" && message.attempts === 0)).toBe(true);

    const none: string[] = [];
    await db.$transaction((transaction) => webhooks.writeOutbox(counting(transaction, none), []));
    expect(none).toEqual([]);
  });

  it("refuses an endpoint beyond the per-user cap, also when they are created at once", async () => {
    const capped = new WebhookRepository({ db, maxEndpointsPerUser: 3 });
    const userId = await createUser();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, index) =>
        capped.createEndpoint({ userId, url: `https://cap.example.com/${index}` }),
      ),
    );
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(3);
    const refused = results.filter((result) => result.status === "rejected");
    expect(refused).toHaveLength(3);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({
      code: "conflict",
      details: { limit: 3 },
    });
    expect(await db.webhookEndpoint.count({ where: { userId } })).toBe(3);
    // Another user has room of their own.
    await expect(
      capped.createEndpoint({ userId: await createUser(), url: "https://cap.example.com/other" }),
    ).resolves.toMatchObject({ batchItemEvents: false });
  });

  it("writes batch items' job events only for endpoints that opted in, and no batch item's job.canceled", async () => {
    const userId = await createUser();
    const plain = await webhooks.createEndpoint({ userId, url: "https://items.example.com/plain" });
    const optedIn = await webhooks.createEndpoint({
      userId,
      url: "https://items.example.com/items",
      batchItemEvents: true,
    });
    const batchId = "0195f0c2-0000-7000-8000-0000000000bb";
    const item = (type: GenqEvent["type"]): GenqEvent => ({ ...jobEvent(userId, type), batchId });
    const written = await db.$transaction((transaction) =>
      webhooks.writeOutbox(transaction, [
        item("job.completed"),
        item("job.canceled"),
        { ...jobEvent(userId, "batch.completed"), jobId: null, batchId },
      ]),
    );
    const targets = written.messages
      .map((message) => `${message.endpointId === plain.id ? "plain" : "items"}`)
      .sort((a, b) => a.localeCompare(b));
    const messages = await db.webhookMessage.findMany({
      where: { id: { in: written.messages.map((message) => message.id) } },
    });
    expect(messages.map((message) => `${message.eventType}→${message.endpointId}`).sort()).toEqual(
      [`job.completed→${optedIn.id}`, `batch.completed→${plain.id}`, `batch.completed→${optedIn.id}`].sort(),
    );
    expect(targets).toHaveLength(3);
  });

  it("defers a bulk transition's endpoint messages to fan-outs written after commit, each exactly once", async () => {
    const deferring = new WebhookRepository({ db, inlineFanoutLimit: 10 });
    const userId = await createUser();
    const endpoints = await Promise.all(
      [0, 1, 2].map((index) =>
        deferring.createEndpoint({ userId, url: `https://bulk.example.com/${index}` }),
      ),
    );
    const events = Array.from({ length: 120 }, (_, index) =>
      jobEvent(userId, "job.canceled", index === 0 ? "https://bulk.example.com/url" : null),
    );
    const calls: string[] = [];
    const written = await db.$transaction((transaction) =>
      deferring.writeOutbox(counting(transaction, calls), events),
    );
    // In the transaction: the per-request URL's message and one fan-out row per event, not 360 messages.
    expect(calls).toEqual([
      "webhookEndpoint.findMany",
      "webhookMessage.createMany",
      "webhookFanout.createMany",
    ]);
    expect(written.messages).toEqual([expect.objectContaining({ url: "https://bulk.example.com/url" })]);
    expect(written.fanouts).toHaveLength(120);
    expect(await db.webhookMessage.count({ where: { userId } })).toBe(1);

    // After commit, in chunks; two processes racing fan each event out once.
    await expect(deferring.fanOut(written.fanouts)).rejects.toThrow(RangeError);
    const chunks = [written.fanouts.slice(0, 50), written.fanouts.slice(50, 100), written.fanouts.slice(100)];
    const results = await Promise.all([...chunks, ...chunks].map((chunk) => deferring.fanOut(chunk)));
    expect(results.flat()).toHaveLength(360);
    expect(await db.webhookMessage.count({ where: { userId } })).toBe(361);
    expect(await db.webhookFanout.count({ where: { userId } })).toBe(0);
    const perEndpoint = await db.webhookMessage.groupBy({
      by: ["endpointId"],
      where: { userId, endpointId: { not: null } },
      _count: true,
    });
    expect(perEndpoint.map((group) => group._count)).toEqual([120, 120, 120]);
    expect(endpoints).toHaveLength(3);
  });

  it("keeps since when an endpoint fails, clears it on a delivery, and tells the owner when it is disabled", async () => {
    const userId = await createUser();
    const failing = await webhooks.createEndpoint({ userId, url: "https://f.example.com/failing" });
    const other = await webhooks.createEndpoint({ userId, url: "https://f.example.com/other" });
    const [message] = (
      await db.$transaction((transaction) =>
        webhooks.writeOutbox(transaction, [jobEvent(userId, "job.completed")]),
      )
    ).messages.filter((written) => written.endpointId === failing.id);
    const attempt = (number: number, outcome: string) => ({
      messageId: message?.id as string,
      endpointId: failing.id,
      attempt: number,
      outcome,
      responseStatus: null,
      latencyMs: 1,
      responseExcerpt: null,
      errorMessage: null,
      next: { status: "retry" as const, at: new Date() },
    });
    await webhooks.claimAttempt(message?.id as string, 1, new Date());
    const first = await webhooks.recordAttempt(attempt(1, "timeout"));
    expect(first.failingSince).toBeInstanceOf(Date);
    await webhooks.claimAttempt(message?.id as string, 2, new Date());
    expect((await webhooks.recordAttempt(attempt(2, "failed"))).failingSince).toEqual(first.failingSince);
    await webhooks.claimAttempt(message?.id as string, 3, new Date());
    expect((await webhooks.recordAttempt(attempt(3, "delivered"))).failingSince).toBeNull();
    expect((await webhooks.getEndpoint(userId, failing.id)).failingSince).toBeNull();

    const notices = await webhooks.disableEndpoint(failing.id, "every attempt failed since then");
    expect(notices).toEqual([expect.objectContaining({ endpointId: other.id, userId })]);
    const notice = await webhooks.getMessage(userId, notices[0]?.id as string);
    expect(notice).toMatchObject({
      eventType: "webhook_endpoint.disabled",
      payload: {
        type: "webhook_endpoint.disabled",
        data: {
          id: failing.id,
          object: "webhook_endpoint",
          disabledReason: "every attempt failed since then",
        },
      },
    });
    // Disabling it again tells nobody twice.
    expect(await webhooks.disableEndpoint(failing.id, "again")).toEqual([]);
  });

  it("rotates a secret, keeping the old one for the grace period", async () => {
    const userId = await createUser();
    const endpoint = await webhooks.createEndpoint({ userId, url: "https://r.example.com/" });
    const rotated = await webhooks.rotateEndpointSecret(userId, endpoint.id, 60);
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect(rotated.previousSecret).toBe(endpoint.secret);
    expect(rotated.previousSecretExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    const immediate = await webhooks.rotateEndpointSecret(userId, endpoint.id, 0);
    expect(immediate.previousSecret).toBeNull();

    const first = await webhooks.userSecret(userId);
    expect(first.secret).toMatch(/^whsec_/);
    expect((await webhooks.userSecret(userId)).secret).toBe(first.secret);
    const next = await webhooks.rotateUserSecret(userId);
    expect(next.previousSecret).toBe(first.secret);
    await expect(webhooks.getEndpoint(await createUser(), endpoint.id)).rejects.toMatchObject({
      code: "not_found",
    });
  });

  it("claims each attempt once, logs it once, and redelivers with the same id", async () => {
    const userId = await createUser();
    const endpoint = await webhooks.createEndpoint({ userId, url: "https://c.example.com/" });
    const {
      messages: [written],
    } = await db.$transaction((transaction) =>
      webhooks.writeOutbox(transaction, [jobEvent(userId, "job.completed")]),
    );
    const messageId = written?.id as string;
    const lease = new Date(Date.now() + 60_000);
    expect(await webhooks.claimAttempt(messageId, 1, lease)).toBe(true);
    expect(await webhooks.claimAttempt(messageId, 1, lease)).toBe(false);
    expect(await webhooks.dueMessages(100)).not.toContainEqual(expect.objectContaining({ id: messageId }));
    const attempt = {
      messageId,
      attempt: 1,
      outcome: "failed",
      responseStatus: 500,
      latencyMs: 3,
      responseExcerpt: "oops",
      errorMessage: null,
      next: { status: "retry" as const, at: new Date(Date.now() - 1) },
    };
    expect(await webhooks.recordAttempt(attempt)).toMatchObject({ recorded: true });
    expect(await webhooks.recordAttempt(attempt)).toMatchObject({ recorded: false });
    expect(await webhooks.dueMessages(10_000)).toContainEqual({
      id: messageId,
      attempts: 1,
      userId,
      endpointId: endpoint.id,
      url: null,
    });
    expect(await webhooks.failuresInARow(messageId, 10)).toBe(1);
    await expect(webhooks.redeliver(userId, messageId)).rejects.toMatchObject({ code: "conflict" });

    expect(await webhooks.claimAttempt(messageId, 2, lease)).toBe(true);
    await webhooks.recordAttempt({
      ...attempt,
      attempt: 2,
      outcome: "delivered",
      next: { status: "delivered" },
    });
    expect(await webhooks.failuresInARow(messageId, 10)).toBe(0);
    const redelivered = await webhooks.redeliver(userId, messageId);
    expect(redelivered).toMatchObject({ id: messageId, status: "pending", attempts: 2 });
    expect(redelivered.deliveries.map((delivery) => delivery.attempt)).toEqual([2, 1]);

    // Disabling the endpoint cancels what it still owes.
    await webhooks.disableEndpoint(endpoint.id, "answered 410 Gone");
    expect((await webhooks.getMessage(userId, messageId)).status).toBe("canceled");
    expect((await webhooks.getEndpoint(userId, endpoint.id)).disabledReason).toBe("answered 410 Gone");
    await expect(webhooks.redeliver(userId, messageId)).rejects.toMatchObject({ code: "conflict" });
    const page = await webhooks.listMessages({ userId, endpointId: endpoint.id, limit: 10 });
    expect(page.map((message) => message.id)).toEqual([messageId]);
  });
});
