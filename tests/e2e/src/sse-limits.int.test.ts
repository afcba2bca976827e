import { buildApp } from "@genq/api";
import { StreamSlots } from "@genq/events";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness, waitUntil } from "./harness.ts";

const OPERATOR = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString("base64")}`;
const PER_USER = 2;

/** An open stream a test reads from: its status, and a promise of how it ended. */
interface OpenStream {
  status: number;
  body: string;
  /** Resolves when the stream ends: `server` when the API closed it, `client` when the test did. */
  ended: Promise<"server" | "client">;
  close(): void;
}

/**
 * Limits on live event streams, over real listening API processes that share one
 * Redis and one Postgres: a per-user cap counted across processes, and streams that
 * end when their key is revoked or their user disabled (no worker runs: jobs stay
 * queued, so nothing else ends the streams).
 */
describe("live event stream limits", () => {
  const harness = new Harness();
  let first: FastifyInstance;
  let other: FastifyInstance;
  let firstBase: string;
  let otherBase: string;

  const apiProcess = async () => {
    const app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      logger: false,
      admin: ADMIN,
      docs: false,
      events: { heartbeatMs: 200, maxStreamsPerUser: PER_USER },
    });
    return { app, base: await app.listen({ port: 0, host: "127.0.0.1" }) };
  };

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    ({ app: first, base: firstBase } = await apiProcess());
    ({ app: other, base: otherBase } = await apiProcess());
  });

  afterAll(async () => {
    await first?.close();
    await other?.close();
    await harness.close();
  });

  async function open(base: string, path: string, apiKey: string): Promise<OpenStream> {
    const controller = new AbortController();
    const response = await fetch(`${base}${path}`, {
      headers: { authorization: `Bearer ${apiKey}`, accept: "text/event-stream" },
      signal: controller.signal,
    });
    const stream: OpenStream = {
      status: response.status,
      body: "",
      ended: Promise.resolve("server"),
      close: () => controller.abort(),
    };
    if (response.status !== 200) {
      stream.body = await response.text();
      return stream;
    }
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    stream.ended = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return "server";
          stream.body += value;
        }
      } catch {
        return "client";
      }
    })();
    return stream;
  }

  async function queuedJob(apiKey: string): Promise<string> {
    const response = await harness.submit(apiKey, { type: "text", input: { prompt: "stays queued" } });
    expect(response.statusCode).toBe(202);
    return response.json().id;
  }

  /** Resolves to how long `stream` took to end, or rejects after `timeoutMs`. */
  async function endsWithin(stream: OpenStream, timeoutMs: number): Promise<"server" | "client"> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the stream was still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([stream.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  it("refuses a user's stream beyond the per-user cap with 429, counted across API processes", async () => {
    const { userId, apiKey } = await harness.createUser();
    const { apiKey: otherUserKey } = await harness.createUser();
    const id = await queuedJob(apiKey);
    const otherId = await queuedJob(otherUserKey);
    const held = [
      await open(firstBase, `/v1/jobs/${id}/events`, apiKey),
      await open(otherBase, `/v1/jobs/${id}/events`, apiKey),
    ];
    expect(held.map((stream) => stream.status)).toEqual([200, 200]);

    for (const base of [firstBase, otherBase]) {
      const refused = await open(base, `/v1/jobs/${id}/events`, apiKey);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body)).toMatchObject({
        error: { code: "rate_limited", details: { limit: "sse_streams_per_user", maxStreams: PER_USER } },
      });
      expect(JSON.parse(refused.body).error.message).toMatch(/live event streams open/);
    }
    // Another user is not affected.
    const neighbour = await open(firstBase, `/v1/jobs/${otherId}/events`, otherUserKey);
    expect(neighbour.status).toBe(200);

    // A closed stream gives its slot back.
    held[0]!.close();
    const slots = new StreamSlots({ redis: harness.redis, prefix: harness.prefix, perUser: PER_USER });
    await waitUntil(async () => (await slots.count(userId)) === 1, 5_000);
    const again = await open(otherBase, `/v1/jobs/${id}/events`, apiKey);
    expect(again.status).toBe(200);
    for (const stream of [held[1]!, neighbour, again]) stream.close();
  });

  it("frees the slots of a process that died without releasing them once their lease lapses", async () => {
    const slots = new StreamSlots({ redis: harness.redis, prefix: harness.prefix, perUser: 1, leaseMs: 300 });
    const userId = "00000000-0000-4000-8000-000000000001";
    expect(await slots.acquire(userId, "crashed-process-stream")).toBe(true);
    expect(await slots.acquire(userId, "new-stream")).toBe(false);
    // Nobody renews or releases the first slot (its process is gone).
    await waitUntil(async () => slots.acquire(userId, "new-stream"), 5_000);
    expect(await slots.count(userId)).toBe(1);
    expect(await harness.redis.pttl(`${harness.prefix}:events:slots:${userId}`)).toBeGreaterThan(0);
  });

  it("ends an open stream within seconds when its API key is revoked in another API process", async () => {
    const { apiKey } = await harness.createUser();
    const id = await queuedJob(apiKey);
    const stream = await open(otherBase, `/v1/jobs/${id}/events`, apiKey);
    expect(stream.status).toBe(200);
    const revoke = await first.inject({
      method: "POST",
      url: `/v1/admin/api-keys/${apiKey.slice(0, 11)}/revoke`,
      headers: { authorization: OPERATOR },
    });
    expect(revoke.statusCode).toBe(200);
    expect(await endsWithin(stream, 3_000)).toBe("server");
    // Reconnecting with the revoked key is refused.
    expect((await open(otherBase, `/v1/jobs/${id}/events`, apiKey)).status).toBe(401);
  });

  it("ends every open stream of a user disabled by an operator, and keeps them on a plan change", async () => {
    const { userId, apiKey } = await harness.createUser();
    const id = await queuedJob(apiKey);
    const onFirst = await open(firstBase, `/v1/jobs/${id}/events`, apiKey);
    const onOther = await open(otherBase, `/v1/jobs/${id}/events`, apiKey);
    expect([onFirst.status, onOther.status]).toEqual([200, 200]);

    const patch = (body: Record<string, unknown>) =>
      first.inject({
        method: "PATCH",
        url: `/v1/admin/users/${userId}`,
        headers: { authorization: OPERATOR },
        payload: body,
      });
    expect((await patch({ plan: "professional" })).statusCode).toBe(200);
    // A plan change is not a reason to cut the stream (the heartbeat shows it is still served).
    const heartbeats = onOther.body.length;
    await waitUntil(() => onOther.body.length > heartbeats, 2_000);
    await expect(endsWithin(onOther, 500)).rejects.toThrow(/still open/);

    expect((await patch({ disabled: true })).statusCode).toBe(200);
    expect(await endsWithin(onFirst, 3_000)).toBe("server");
    expect(await endsWithin(onOther, 3_000)).toBe("server");
  });
});
