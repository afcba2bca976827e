import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebhookRepository } from "@genq/db";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteKeys, freePort, Harness, waitUntil } from "./harness.ts";

/** One POST a receiver got. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real webhook receiver on 127.0.0.1: records every request and answers with
 * the status `respond` picks (200 by default).
 */
class Receiver {
  readonly received: Received[] = [];
  /** The status to answer with; null leaves the request hanging. */
  respond: (request: Received, index: number) => number | null = () => 200;
  /** The most requests open at once: overall, and per path. */
  readonly maxOpen = { total: 0, byPath: new Map<string, number>() };
  #open = { total: 0, byPath: new Map<string, number>() };
  #server: Server | undefined;

  async start(): Promise<this> {
    this.#server = createServer((request, response) => {
      const path = request.url ?? "";
      this.#open.total += 1;
      this.#open.byPath.set(path, (this.#open.byPath.get(path) ?? 0) + 1);
      this.maxOpen.total = Math.max(this.maxOpen.total, this.#open.total);
      this.maxOpen.byPath.set(
        path,
        Math.max(this.maxOpen.byPath.get(path) ?? 0, this.#open.byPath.get(path) ?? 0),
      );
      response.on("close", () => {
        this.#open.total -= 1;
        this.#open.byPath.set(path, (this.#open.byPath.get(path) ?? 1) - 1);
      });
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const entry = {
          path: request.url ?? "",
          headers: request.headers,
          body: Buffer.concat(chunks).toString(),
        };
        const index = this.received.filter((other) => other.path === entry.path).length;
        this.received.push(entry);
        const status = this.respond(entry, index);
        if (status === null) return;
        response.writeHead(status, { "content-type": "text/plain" }).end("ok from receiver");
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    return this;
  }

  url(path: string): string {
    const address = this.#server?.address() as AddressInfo | undefined;
    if (address === undefined) throw new Error("the receiver is not listening");
    return `http://127.0.0.1:${address.port}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((entry) => entry.path === path);
  }

  /** Ends every open connection (requests left hanging fail at the client). */
  dropConnections(): void {
    this.#server?.closeAllConnections();
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}

/** Verifies a delivery the way a receiver would, with the third-party package. */
function verify(
  secret: string,
  entry: Received,
): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(entry.body, {
    "webhook-id": String(entry.headers["webhook-id"]),
    "webhook-timestamp": String(entry.headers["webhook-timestamp"]),
    "webhook-signature": String(entry.headers["webhook-signature"]),
  }) as { type: string; timestamp: string; data: Record<string, unknown> };
}

describe("webhooks", () => {
  const harness = new Harness({
    workerEnv: {
      GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
      GENQ_WEBHOOK_RETRY_SCHEDULE_MS: "0,200,200,200",
      GENQ_WEBHOOK_RELAY_INTERVAL_MS: "300",
      GENQ_WEBHOOK_TIMEOUT_MS: "3000",
    },
  });
  const receiver = new Receiver();
  let apiKey: string;
  let metricsPort: number;

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    metricsPort = await freePort();
    await harness.startInProcessWorker({ GENQ_WORKER_HEALTH_PORT: String(metricsPort) });
    await receiver.start();
    ({ apiKey } = await harness.createUser());
  }, 60_000);

  afterAll(async () => {
    await receiver.close();
    await harness.close();
  });

  const api = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown) =>
    harness.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${apiKey}` },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });

  async function createEndpoint(
    path: string,
    eventTypes?: string[],
    options: { batchItemEvents?: boolean } = {},
  ): Promise<{ id: string; secret: string }> {
    const response = await api("POST", "/v1/webhook-endpoints", {
      url: receiver.url(path),
      eventTypes,
      ...options,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  async function completedJob(body: Record<string, unknown> = {}): Promise<string> {
    const response = await harness.submit(apiKey, { type: "text", input: { prompt: "hello" }, ...body });
    expect(response.statusCode, response.body).toBe(202);
    const id = response.json().id as string;
    expect((await harness.waitForJob(apiKey, id)).status).toBe("completed");
    return id;
  }

  it("delivers a signed, thin job.completed to an endpoint and to the job's own URL", async () => {
    const endpoint = await createEndpoint("/all");
    expect(endpoint.secret).toMatch(/^whsec_/);
    const userSecret = (await api("GET", "/v1/webhook-secret")).json().secret as string;
    const jobId = await completedJob({ webhook: { url: receiver.url("/per-request") } });

    await waitUntil(
      () => receiver.at("/all").length === 1 && receiver.at("/per-request").length === 1,
      10_000,
    );
    const [toEndpoint] = receiver.at("/all");
    const [toUrl] = receiver.at("/per-request");
    const event = verify(endpoint.secret, toEndpoint!);
    expect(verify(userSecret, toUrl!)).toEqual(event);
    expect(() => verify(userSecret, toEndpoint!)).toThrow();
    expect(event.type).toBe("job.completed");
    expect(new Date(event.timestamp).getTime()).not.toBeNaN();
    expect(event.data).toMatchObject({
      id: jobId,
      object: "job",
      status: "completed",
      links: { job: `/v1/jobs/${jobId}` },
    });
    // Thin: no result, no text, no image bytes.
    expect(event.data).not.toHaveProperty("result");
    expect(toEndpoint!.body).not.toContain("mock");
    expect(toEndpoint!.headers["webhook-id"]).not.toBe(toUrl!.headers["webhook-id"]);

    // The attempt is logged once the receiver has answered.
    await waitUntil(async () => {
      const page = (await api("GET", `/v1/webhook-messages?jobId=${jobId}`)).json();
      return (
        page.data.length === 2 &&
        page.data.every((message: { status: string }) => message.status === "delivered")
      );
    }, 5_000);
    const messages = (await api("GET", `/v1/webhook-messages?jobId=${jobId}`)).json();
    for (const message of messages.data) {
      expect(message).toMatchObject({ status: "delivered", attempts: 1, eventType: "job.completed" });
      expect(message.deliveries[0]).toMatchObject({ attempt: 1, outcome: "delivered", responseStatus: 200 });
      expect(message.deliveries[0].responseExcerpt).toBe("ok from receiver");
    }
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("retries a receiver that answers 500 twice and delivers on the third attempt with the same webhook-id", async () => {
    const endpoint = await createEndpoint("/flaky", ["job.completed"]);
    receiver.respond = (entry, index) => (entry.path === "/flaky" && index < 2 ? 500 : 200);
    const jobId = await completedJob();

    await waitUntil(() => receiver.at("/flaky").length === 3, 15_000);
    const attempts = receiver.at("/flaky");
    expect(new Set(attempts.map((entry) => entry.headers["webhook-id"])).size).toBe(1);
    for (const entry of attempts) expect(verify(endpoint.secret, entry).data.id).toBe(jobId);

    await waitUntil(async () => {
      const page = (await api("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).json();
      return page.data[0]?.status === "delivered";
    }, 5_000);
    const [message] = (await api("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).json().data;
    expect(message.id).toBe(attempts[0]!.headers["webhook-id"]);
    expect(message.attempts).toBe(3);
    expect(
      message.deliveries.map((delivery: { attempt: number; responseStatus: number }) => [
        delivery.attempt,
        delivery.responseStatus,
      ]),
    ).toEqual([
      [3, 200],
      [2, 500],
      [1, 500],
    ]);
    receiver.respond = () => 200;
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("disables an endpoint that answers 410 Gone, and sends it nothing more until it is enabled again", async () => {
    const endpoint = await createEndpoint("/gone");
    receiver.respond = (entry) => (entry.path === "/gone" ? 410 : 200);
    await completedJob();
    await waitUntil(
      async () => (await api("GET", `/v1/webhook-endpoints/${endpoint.id}`)).json().disabled,
      10_000,
    );
    const view = (await api("GET", `/v1/webhook-endpoints/${endpoint.id}`)).json();
    expect(view.disabledReason).toContain("410");
    expect(receiver.at("/gone")).toHaveLength(1);
    const [message] = (await api("GET", `/v1/webhook-endpoints/${endpoint.id}/deliveries`)).json().data;
    expect(message).toMatchObject({ status: "failed", attempts: 1 });

    // While disabled: no message is even written for it.
    const later = await completedJob();
    const laterMessages = (await api("GET", `/v1/webhook-messages?jobId=${later}`)).json().data;
    expect(laterMessages.filter((entry: { endpointId: string }) => entry.endpointId === endpoint.id)).toEqual(
      [],
    );
    expect(receiver.at("/gone")).toHaveLength(1);

    receiver.respond = () => 200;
    const enabled = await api("PATCH", `/v1/webhook-endpoints/${endpoint.id}`, { disabled: false });
    expect(enabled.json()).toMatchObject({ disabled: false, disabledReason: null });
    const redeliver = await api("POST", `/v1/webhook-messages/${message.id}/redeliver`);
    expect(redeliver.statusCode, redeliver.body).toBe(202);
    await waitUntil(() => receiver.at("/gone").length === 2, 10_000);
    expect(receiver.at("/gone")[1]!.headers["webhook-id"]).toBe(message.id);
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("signs with the old and the new secret during a rotation's grace period", async () => {
    const endpoint = await createEndpoint("/rotating");
    const rotated = await api("POST", `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {
      graceSeconds: 3600,
    });
    expect(rotated.statusCode, rotated.body).toBe(200);
    const { secret: newSecret, previousSecretExpiresAt } = rotated.json();
    expect(newSecret).not.toBe(endpoint.secret);
    expect(new Date(previousSecretExpiresAt).getTime()).toBeGreaterThan(Date.now());
    expect((await api("GET", `/v1/webhook-endpoints/${endpoint.id}/secret`)).json().secret).toBe(newSecret);

    const jobId = await completedJob();
    await waitUntil(() => receiver.at("/rotating").length === 1, 10_000);
    const [entry] = receiver.at("/rotating");
    // A receiver still holding the old secret and one already holding the new one both accept it.
    expect(verify(endpoint.secret, entry!).data.id).toBe(jobId);
    expect(verify(newSecret, entry!).data.id).toBe(jobId);

    // Without a grace period only the new secret signs.
    const immediate = (
      await api("POST", `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { graceSeconds: 0 })
    ).json();
    await completedJob();
    await waitUntil(() => receiver.at("/rotating").length === 2, 10_000);
    const second = receiver.at("/rotating")[1]!;
    expect(verify(immediate.secret, second).type).toBe("job.completed");
    expect(() => verify(newSecret, second)).toThrow();

    // The user's secret (per-request URLs) rotates the same way.
    const before = (await api("GET", "/v1/webhook-secret")).json().secret as string;
    const after = (await api("POST", "/v1/webhook-secret/rotate", {})).json();
    await completedJob({ webhook: { url: receiver.url("/rotating-user") } });
    await waitUntil(() => receiver.at("/rotating-user").length === 1, 10_000);
    const [userEntry] = receiver.at("/rotating-user");
    expect(verify(before, userEntry!).type).toBe("job.completed");
    expect(verify(after.secret, userEntry!).type).toBe("job.completed");
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("delivers an outbox message that Redis never saw, after Redis lost its data (the relay)", async () => {
    const endpoint = await createEndpoint("/relayed");
    const webhooks = new WebhookRepository({ db: harness.db });
    const { userId } = (await harness.db.webhookEndpoint.findUniqueOrThrow({
      where: { id: endpoint.id },
    })) as {
      userId: string;
    };
    // Committed in Postgres, never enqueued (as if the process died right after commit)...
    const written = await harness.db.$transaction((transaction) =>
      webhooks.writeOutbox(transaction, [
        {
          type: "batch.completed",
          userId,
          jobId: null,
          batchId: "0195f0c2-0000-7000-8000-0000000000aa",
          webhookUrl: null,
          timestamp: new Date(),
          data: { id: "0195f0c2-0000-7000-8000-0000000000aa", object: "batch", status: "completed" },
        },
      ]),
    );
    const { id: messageId } = await harness.db.webhookMessage.findFirstOrThrow({
      where: { id: { in: written.messages.map((message) => message.id) }, endpointId: endpoint.id },
    });
    // A bulk transition's deferred fan-out, committed and never written out (its process died).
    const deferring = new WebhookRepository({ db: harness.db, inlineFanoutLimit: 0 });
    const deferred = await harness.db.$transaction((transaction) =>
      deferring.writeOutbox(transaction, [
        {
          type: "job.failed",
          userId,
          jobId: "0195f0c2-0000-7000-8000-0000000000ab",
          batchId: null,
          webhookUrl: null,
          timestamp: new Date(),
          data: { id: "0195f0c2-0000-7000-8000-0000000000ab", object: "job", status: "failed" },
        },
      ]),
    );
    expect(deferred).toEqual({ messages: [], fanouts: [expect.any(String)] });
    // ...and Redis lost everything of this deployment.
    await deleteKeys(harness.redis, `${harness.prefix}*`);

    await waitUntil(() => receiver.at("/relayed").length === 2, 15_000);
    const relayed = receiver
      .at("/relayed")
      .map((entry) => ({ entry, event: verify(endpoint.secret, entry) }));
    const batchEvent = relayed.find(({ event }) => event.type === "batch.completed");
    expect(batchEvent?.entry.headers["webhook-id"]).toBe(messageId);
    expect(batchEvent?.event.data).toMatchObject({
      object: "batch",
      links: { batch: "/v1/batches/0195f0c2-0000-7000-8000-0000000000aa" },
    });
    expect(relayed.find(({ event }) => event.type === "job.failed")?.event.data).toMatchObject({
      id: "0195f0c2-0000-7000-8000-0000000000ab",
    });
    expect(await harness.db.webhookFanout.count()).toBe(0);
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("delivers job.canceled for a job canceled through the API", async () => {
    const endpoint = await createEndpoint("/canceled", ["job.canceled"]);
    // A job that stays active (the mock answers after a minute) until it is canceled through the API.
    const response = await harness.submit(apiKey, {
      type: "text",
      input: { prompt: "cancel me", providerOptions: { mock: { latencyMs: 60_000 } } },
    });
    const jobId = response.json().id as string;
    await harness.waitForJob(apiKey, jobId, (job) => job.status === "active");
    const canceled = await harness.cancel(apiKey, jobId);
    expect(canceled.statusCode, canceled.body).toBe(200);
    await waitUntil(() => receiver.at("/canceled").length === 1, 10_000);
    const event = verify(endpoint.secret, receiver.at("/canceled")[0]!);
    expect(event).toMatchObject({ type: "job.canceled", data: { id: jobId, status: "canceled" } });
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
  });

  it("sends a batch's URL one batch.completed, and its items' job events only to endpoints that opted in", async () => {
    const plain = await createEndpoint("/batch-plain", ["job.completed", "batch.completed"]);
    const endpoint = await createEndpoint("/batch-endpoint", ["job.completed", "batch.completed"], {
      batchItemEvents: true,
    });
    const userSecret = (await api("GET", "/v1/webhook-secret")).json().secret as string;
    const response = await api("POST", "/v1/batches", {
      type: "text",
      items: [{ prompt: "one" }, { prompt: "two" }, { prompt: "three" }],
      webhook: { url: receiver.url("/batch-url") },
    });
    expect(response.statusCode, response.body).toBe(202);
    const batchId = response.json().id as string;

    await waitUntil(() => receiver.at("/batch-endpoint").length === 4, 20_000);
    const toEndpoint = receiver.at("/batch-endpoint").map((entry) => verify(endpoint.secret, entry));
    expect(toEndpoint.filter((event) => event.type === "job.completed")).toHaveLength(3);
    expect(
      toEndpoint.filter((event) => event.type === "job.completed").map((event) => event.data.batchId),
    ).toEqual([batchId, batchId, batchId]);
    await waitUntil(
      () => receiver.at("/batch-url").some((entry) => entry.body.includes("batch.completed")),
      10_000,
    );
    // Per-item events are opt-in: the other endpoint gets the batch's event only.
    await waitUntil(() => receiver.at("/batch-plain").length >= 1, 10_000);
    const toPlain = receiver.at("/batch-plain").map((entry) => verify(plain.secret, entry));
    expect(toPlain.map((event) => event.type)).toEqual(["batch.completed"]);
    const toUrl = receiver.at("/batch-url").map((entry) => verify(userSecret, entry));
    // batch.progress may come first (throttled); job events never do.
    expect(toUrl.every((event) => event.type.startsWith("batch."))).toBe(true);
    const completed = toUrl.filter((event) => event.type === "batch.completed");
    expect(completed).toHaveLength(1);
    expect(completed[0]?.data).toMatchObject({
      id: batchId,
      status: "completed",
      counts: { total: 3, completed: 3 },
      links: { batch: `/v1/batches/${batchId}` },
    });
    await api("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
    await api("DELETE", `/v1/webhook-endpoints/${plain.id}`);
  });

  it("manages endpoints: list, read, change, validate, keep them per user", async () => {
    const created = await createEndpoint("/crud", ["job.failed"]);
    const list = (await api("GET", "/v1/webhook-endpoints")).json();
    expect(list.data.map((entry: { id: string }) => entry.id)).toContain(created.id);
    expect(JSON.stringify(list)).not.toContain(created.secret);

    const patched = await api("PATCH", `/v1/webhook-endpoints/${created.id}`, {
      description: "ops alerts",
      eventTypes: ["job.failed", "batch.completed"],
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({
      description: "ops alerts",
      eventTypes: ["job.failed", "batch.completed"],
      disabled: false,
      links: { deliveries: `/v1/webhook-endpoints/${created.id}/deliveries` },
    });

    const badType = await api("POST", "/v1/webhook-endpoints", {
      url: receiver.url("/x"),
      eventTypes: ["job.exploded"],
    });
    expect(badType.statusCode).toBe(400);
    const badUrl = await api("POST", "/v1/webhook-endpoints", { url: "ftp://example.com/hook" });
    expect(badUrl.statusCode).toBe(400);
    const refusedPatch = await api("PATCH", `/v1/webhook-endpoints/${created.id}`, {
      url: "http://10.0.0.1/",
    });
    expect(refusedPatch.json().error).toMatchObject({
      code: "invalid_request",
      details: { addressClass: "private" },
    });

    // Another user sees none of it.
    const other = await harness.createUser();
    const asOther = await harness.app.inject({
      method: "GET",
      url: `/v1/webhook-endpoints/${created.id}`,
      headers: { authorization: `Bearer ${other.apiKey}` },
    });
    expect(asOther.statusCode).toBe(404);

    expect((await api("DELETE", `/v1/webhook-endpoints/${created.id}`)).statusCode).toBe(204);
    expect((await api("GET", `/v1/webhook-endpoints/${created.id}`)).statusCode).toBe(404);
    expect((await api("DELETE", `/v1/webhook-endpoints/${created.id}`)).statusCode).toBe(404);
  });

  it("counts deliveries by outcome on the worker's /metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const delivered = /genq_webhook_deliveries_total\{[^}]*outcome="delivered"[^}]*\} (\d+)/.exec(text);
    const failed = /genq_webhook_deliveries_total\{[^}]*outcome="failed"[^}]*\} (\d+)/.exec(text);
    expect(Number(delivered?.[1])).toBeGreaterThanOrEqual(5);
    expect(Number(failed?.[1])).toBeGreaterThanOrEqual(3);
    expect(text).toContain("genq_webhook_delivery_duration_seconds_bucket");
  });
});

describe("webhook SSRF guard (no allowlist)", () => {
  const harness = new Harness({ workerEnv: { GENQ_WEBHOOK_RETRY_SCHEDULE_MS: "0,100" } });
  const receiver = new Receiver();
  let apiKey: string;

  beforeAll(async () => {
    await harness.start();
    await receiver.start();
    ({ apiKey } = await harness.createUser());
  }, 60_000);

  afterAll(async () => {
    await receiver.close();
    await harness.close();
  });

  it.each([
    ["http://127.0.0.1:8080/hook", "loopback"],
    ["http://10.0.0.1/hook", "private"],
    ["http://169.254.169.254/latest/meta-data/", "metadata"],
    ["http://[::1]:8080/hook", "loopback"],
    ["http://localhost:8080/hook", "loopback"],
  ])("refuses the endpoint %s (%s)", async (url, addressClass) => {
    const response = await harness.app.inject({
      method: "POST",
      url: "/v1/webhook-endpoints",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { url },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: "invalid_request", details: { addressClass } });
    expect(response.json().error.message).toContain(addressClass);
  });

  it.each(["http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/", "http://[::1]/hook"])(
    "refuses a job whose webhook.url is %s",
    async (url) => {
      const response = await harness.submit(apiKey, {
        type: "text",
        input: { prompt: "x" },
        webhook: { url },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe("invalid_request");
    },
  );

  it("refuses at delivery a hostname that resolves to loopback, and calls nothing", async () => {
    const url = receiver.url("/never").replace("127.0.0.1", "localhost");
    const response = await harness.submit(apiKey, { type: "text", input: { prompt: "x" }, webhook: { url } });
    expect(response.statusCode, response.body).toBe(202);
    const jobId = response.json().id as string;
    await harness.waitForJob(apiKey, jobId);
    let message: { status: string; deliveries: Array<{ outcome: string; errorMessage: string }> } | undefined;
    await waitUntil(async () => {
      const list = await harness.app.inject({
        method: "GET",
        url: `/v1/webhook-messages?jobId=${jobId}`,
        headers: { authorization: `Bearer ${apiKey}` },
      });
      message = list.json().data[0];
      return message?.status === "failed";
    }, 10_000);
    expect(message?.deliveries[0]).toMatchObject({ outcome: "refused" });
    expect(message?.deliveries[0]?.errorMessage).toContain("loopback");
    expect(receiver.received).toEqual([]);
  });
});

describe("webhooks across a worker crash", () => {
  const harness = new Harness({
    workerEnv: {
      GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
      GENQ_WEBHOOK_TIMEOUT_MS: "1000",
      GENQ_WEBHOOK_RELAY_INTERVAL_MS: "300",
    },
  });
  const receiver = new Receiver();

  beforeAll(async () => {
    await harness.start({ startWorker: false });
    await receiver.start();
    // The first worker process of a fresh checkout transpiles every module (tsx's cache is
    // cold), which on a loaded 2-core machine can take longer than the test itself: start one
    // here, outside the test's time, and stop it once it is ready.
    const warmUp = await harness.spawnWorker();
    const exited = new Promise((resolve) => warmUp.once("exit", resolve));
    warmUp.kill("SIGTERM");
    await exited;
  }, 240_000);

  afterAll(async () => {
    await receiver.close();
    await harness.close();
  });

  it("delivers once more, with the same webhook-id, after the worker died mid-delivery", async () => {
    const { apiKey } = await harness.createUser();
    const created = await harness.app.inject({
      method: "POST",
      url: "/v1/webhook-endpoints",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { url: receiver.url("/crash") },
    });
    const endpoint = created.json() as { id: string; secret: string };
    const child = await harness.spawnWorker();
    // The first attempt reaches the receiver, which kills the worker before answering.
    receiver.respond = (_, index) => {
      if (index > 0) return 200;
      child.kill("SIGKILL");
      return null;
    };
    const response = await harness.submit(apiKey, { type: "text", input: { prompt: "crash" } });
    const jobId = response.json().id as string;
    await waitUntil(() => receiver.at("/crash").length === 1, 30_000);
    await new Promise((resolve) => (child.exitCode === null ? child.once("exit", resolve) : resolve(null)));

    // Another worker finds the attempt's lease expired and delivers again.
    await harness.startInProcessWorker();
    await waitUntil(() => receiver.at("/crash").length === 2, 20_000);
    const [first, second] = receiver.at("/crash");
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    expect(verify(endpoint.secret, second!).data).toMatchObject({ id: jobId, status: "completed" });
    await waitUntil(async () => {
      const message = await harness.db.webhookMessage.findFirst({ where: { jobId } });
      return message?.status === "delivered";
    }, 5_000);
    const message = await harness.db.webhookMessage.findFirstOrThrow({
      where: { jobId },
      include: { deliveries: true },
    });
    // The first attempt never logged an outcome; the second did.
    expect(message.deliveries.map((delivery) => [delivery.attempt, delivery.outcome])).toEqual([
      [2, "delivered"],
    ]);
    expect(await harness.db.webhookMessage.count({ where: { userId: message.userId } })).toBe(1);
  }, 90_000);
});

describe("webhooks shared fairly between tenants", () => {
  const harness = new Harness({
    workerEnv: {
      GENQ_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
      GENQ_WEBHOOK_RELAY_INTERVAL_MS: "300",
      // The production timeout: a tarpit holds a delivery slot for 15 s.
      GENQ_WEBHOOK_TIMEOUT_MS: "15000",
      GENQ_WEBHOOK_CONCURRENCY: "16",
      GENQ_WEBHOOK_TENANT_CONCURRENCY: "8",
      GENQ_WEBHOOK_ENDPOINT_CONCURRENCY: "4",
      GENQ_WEBHOOK_RETRY_SCHEDULE_MS: "0,300,300,300,300,300,300,300,300,300",
      GENQ_WEBHOOK_DISABLE_AFTER_MS: "1000",
      GENQ_BATCH_DISPATCH_INTERVAL_MS: "50",
    },
  });
  const receiver = new Receiver();
  /** Accepts every request and never answers (until closed). */
  const tarpit = new Receiver();

  beforeAll(async () => {
    await harness.start();
    await receiver.start();
    tarpit.respond = () => null;
    await tarpit.start();
  }, 60_000);

  afterAll(async () => {
    await tarpit.close();
    await receiver.close();
    await harness.close();
  });

  const as =
    (apiKey: string) => (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown) =>
      harness.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${apiKey}` },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });

  it("delivers another user's webhook within seconds while one user's 20 endpoints are tarpits with 500 deliveries queued", async () => {
    const alice = await harness.createUser();
    const asAlice = as(alice.apiKey);
    const tarpits: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      const created = await asAlice("POST", "/v1/webhook-endpoints", { url: tarpit.url(`/tarpit/${index}`) });
      expect(created.statusCode, created.body).toBe(201);
      tarpits.push(created.json().id as string);
    }
    // 25 jobs: 500 deliveries to endpoints that never answer (15 s each), queued before Bob's.
    await Promise.all(
      Array.from({ length: 25 }, async (_, index) => {
        const response = await harness.submit(alice.apiKey, {
          type: "text",
          input: { prompt: `tarpit ${index}` },
        });
        await harness.waitForJob(alice.apiKey, response.json().id as string);
      }),
    );
    await waitUntil(() => tarpit.received.length >= 8, 10_000);
    await waitUntil(
      async () => (await harness.db.webhookMessage.count({ where: { userId: alice.userId } })) === 500,
      10_000,
    );

    const bob = await harness.createUser();
    const asBob = as(bob.apiKey);
    const endpoint = (await asBob("POST", "/v1/webhook-endpoints", { url: receiver.url("/bob") })).json();
    const response = await harness.submit(bob.apiKey, { type: "text", input: { prompt: "bob" } });
    const jobId = response.json().id as string;
    await harness.waitForJob(bob.apiKey, jobId);
    const finished = Date.now();
    await waitUntil(() => receiver.at("/bob").length === 1, 5_000);
    expect(Date.now() - finished).toBeLessThan(3_000);
    expect(verify(endpoint.secret, receiver.at("/bob")[0]!).data).toMatchObject({ id: jobId });

    // Alice's tarpits held at most her share: 8 deliveries at once, at most 4 on one endpoint.
    expect(tarpit.maxOpen.total).toBe(8);
    expect(Math.max(...tarpit.maxOpen.byPath.values())).toBeLessThanOrEqual(4);

    for (const id of tarpits) await asAlice("DELETE", `/v1/webhook-endpoints/${id}`);
    tarpit.dropConnections();
  }, 60_000);

  it("refuses a user's endpoint beyond the cap with 409 conflict naming the limit", async () => {
    const carol = await harness.createUser();
    const asCarol = as(carol.apiKey);
    const ids: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      const created = await asCarol("POST", "/v1/webhook-endpoints", {
        url: receiver.url(`/carol/${index}`),
      });
      expect(created.statusCode, created.body).toBe(201);
      ids.push(created.json().id as string);
    }
    const refused = await asCarol("POST", "/v1/webhook-endpoints", { url: receiver.url("/carol/21") });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error).toMatchObject({ code: "conflict", details: { limit: 20 } });
    expect(refused.json().error.message).toContain("20 webhook endpoints");
    expect(await harness.db.webhookEndpoint.count({ where: { userId: carol.userId } })).toBe(20);

    expect((await asCarol("DELETE", `/v1/webhook-endpoints/${ids[0]}`)).statusCode).toBe(204);
    const again = await asCarol("POST", "/v1/webhook-endpoints", { url: receiver.url("/carol/21") });
    expect(again.statusCode, again.body).toBe(201);
  });

  it("disables an endpoint whose attempts fail for the configured time, and tells the owner's other endpoints", async () => {
    const dave = await harness.createUser();
    const asDave = as(dave.apiKey);
    receiver.respond = (entry) => (entry.path === "/dave-failing" ? 500 : 200);
    const failing = (
      await asDave("POST", "/v1/webhook-endpoints", { url: receiver.url("/dave-failing") })
    ).json();
    const owner = (
      await asDave("POST", "/v1/webhook-endpoints", {
        url: receiver.url("/dave-owner"),
        eventTypes: ["webhook_endpoint.disabled"],
      })
    ).json();
    expect(owner.id, JSON.stringify(owner)).toBeDefined();
    const response = await harness.submit(dave.apiKey, { type: "text", input: { prompt: "dave" } });
    await harness.waitForJob(dave.apiKey, response.json().id as string);

    await waitUntil(
      async () => (await asDave("GET", `/v1/webhook-endpoints/${failing.id}`)).json().disabled === true,
      15_000,
    );
    const view = (await asDave("GET", `/v1/webhook-endpoints/${failing.id}`)).json();
    expect(view.disabledReason).toContain("every attempt failed since");
    expect(
      new Date(view.disabledAt).getTime() - new Date(view.failingSince).getTime(),
    ).toBeGreaterThanOrEqual(1_000);
    const attempts = receiver.at("/dave-failing").length;
    expect(attempts).toBeGreaterThanOrEqual(2);

    await waitUntil(() => receiver.at("/dave-owner").length === 1, 10_000);
    const event = verify(owner.secret, receiver.at("/dave-owner")[0]!);
    expect(event).toMatchObject({
      type: "webhook_endpoint.disabled",
      data: { id: failing.id, object: "webhook_endpoint", url: receiver.url("/dave-failing") },
    });
    expect(String(event.data.disabledReason)).toContain("every attempt failed since");
    // Nothing more goes to the disabled endpoint.
    const message = (await asDave("GET", `/v1/webhook-endpoints/${failing.id}/deliveries`)).json().data[0];
    expect(message.status).toBe("canceled");
    expect(receiver.at("/dave-failing")).toHaveLength(attempts);
    receiver.respond = () => 200;
  }, 30_000);

  it("cancels a 3,000-item batch without writing an outbox row per canceled item", async () => {
    const erin = await harness.createUser();
    const asErin = as(erin.apiKey);
    for (const [path, batchItemEvents] of [
      ["/erin-items", true],
      ["/erin-plain", false],
    ] as const) {
      const created = await asErin("POST", "/v1/webhook-endpoints", {
        url: receiver.url(path),
        batchItemEvents,
      });
      expect(created.statusCode, created.body).toBe(201);
    }
    const items = Array.from({ length: 3_000 }, (_, index) => ({
      prompt: `slow ${index}`,
      providerOptions: { mock: { latencyMs: 100 } },
    }));
    const accepted = await asErin("POST", "/v1/batches", {
      type: "text",
      items,
      webhook: { url: receiver.url("/erin-batch") },
    });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const batchId = accepted.json().id as string;
    await waitUntil(
      async () => (await asErin("GET", `/v1/batches/${batchId}`)).json().counts.completed >= 20,
      30_000,
    );
    const canceled = await asErin("POST", `/v1/batches/${batchId}/cancel`);
    expect(canceled.statusCode, canceled.body).toBe(200);
    await waitUntil(
      async () => (await asErin("GET", `/v1/batches/${batchId}`)).json().status === "canceled",
      30_000,
    );
    const { counts } = (await asErin("GET", `/v1/batches/${batchId}`)).json();
    expect(counts.canceled).toBeGreaterThan(2_000);

    // One message per item that ran (to the endpoint that opted in), a few batch events; none per canceled item.
    const messages = await harness.db.webhookMessage.groupBy({
      by: ["eventType"],
      where: { userId: erin.userId },
      _count: true,
    });
    const byType = Object.fromEntries(messages.map((group) => [group.eventType, group._count]));
    expect(byType["job.canceled"]).toBeUndefined();
    expect(byType["job.completed"]).toBe(counts.completed);
    expect(byType["batch.completed"]).toBe(3);
    const total = Object.values(byType).reduce((sum, count) => sum + count, 0);
    expect(total).toBeLessThan(counts.completed + 3 * 20);
    // The owner still learns how the batch ended.
    await waitUntil(
      () => receiver.at("/erin-plain").some((entry) => entry.body.includes('"batch.completed"')),
      10_000,
    );
  }, 90_000);
});
