import type { IncomingHttpHeaders } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { QuotaExceededError, RateLimitError, ServiceUnavailableError } from "./errors.ts";
import { GenqClient } from "./genq-client.ts";
import { startTestServer } from "./test-server.ts";

const JOB = { id: "job-1", object: "job", type: "text", status: "queued" };
let close: (() => Promise<void>) | undefined;

afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A server answering each request with the next of `answers` (the last one repeats), recording arrivals. */
async function scripted(answers: Array<{ status: number; headers?: Record<string, string>; body: unknown }>) {
  const arrivals: Array<{ at: number; headers: IncomingHttpHeaders }> = [];
  const server = await startTestServer((request, response) => {
    arrivals.push({ at: Date.now(), headers: request.headers });
    request.resume();
    request.on("end", () => {
      const answer = answers[Math.min(arrivals.length - 1, answers.length - 1)]!;
      response
        .writeHead(answer.status, {
          "content-type": "application/json",
          "x-request-id": `req-${arrivals.length}`,
          ...answer.headers,
        })
        .end(JSON.stringify(answer.body));
    });
  });
  close = server.close;
  return { url: server.url, arrivals };
}

const rateLimited = (retryAfter: string) => ({
  status: 429,
  headers: { "retry-after": retryAfter },
  body: { error: { code: "rate_limited", message: "slow down" } },
});

describe("retries", () => {
  it("waits as long as Retry-After says before retrying a 429, then answers", async () => {
    const server = await scripted([rateLimited("1"), { status: 202, body: JOB }]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    const job = await genq.jobs.create({ type: "text", input: { prompt: "x" } });
    expect(job.id).toBe("job-1");
    expect(server.arrivals).toHaveLength(2);
    const waited = server.arrivals[1]!.at - server.arrivals[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(2_500);
    // The retry is the same request: the same Idempotency-Key, so it cannot submit twice.
    expect(server.arrivals[1]!.headers["idempotency-key"]).toBe(
      server.arrivals[0]!.headers["idempotency-key"],
    );
  });

  it("reads Retry-After as an HTTP date too", async () => {
    const inOneSecond = new Date(Date.now() + 1_500).toUTCString();
    const server = await scripted([rateLimited(inOneSecond), { status: 200, body: JOB }]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    await genq.jobs.get("job-1");
    expect(server.arrivals[1]!.at - server.arrivals[0]!.at).toBeGreaterThanOrEqual(400);
  });

  it("retries a 503 at most maxRetries times, then throws it with its request id", async () => {
    const server = await scripted([
      {
        status: 503,
        headers: { "retry-after": "0" },
        body: { error: { code: "service_unavailable", message: "busy" } },
      },
    ]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key", maxRetries: 3 });
    const error = await genq.jobs.get("job-1").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({
      status: 503,
      code: "service_unavailable",
      message: "busy",
      requestId: "req-4",
    });
    expect(server.arrivals).toHaveLength(4);
  });

  it("does not wait longer than maxRetryDelayMs: a longer Retry-After is thrown at once", async () => {
    const server = await scripted([rateLimited("120"), { status: 200, body: JOB }]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key", maxRetryDelayMs: 5_000 });
    const started = Date.now();
    const error = await genq.jobs.get("job-1").catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ retryAfterSeconds: 120 });
    expect(server.arrivals).toHaveLength(1);
  });

  it("never retries quota_exceeded: waiting does not make a job fit", async () => {
    const server = await scripted([
      { status: 429, body: { error: { code: "quota_exceeded", message: "monthly tokens used up" } } },
    ]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    const error = await genq.jobs
      .create({ type: "text", input: { prompt: "x" } })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(server.arrivals).toHaveLength(1);
  });

  it("does not retry a streamed body (it cannot be sent twice)", async () => {
    const server = await scripted([rateLimited("0"), { status: 202, body: JOB }]);
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    async function* items() {
      yield { prompt: "a" };
    }
    const error = await genq.batches
      .create({ type: "text", jsonl: items() })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(server.arrivals).toHaveLength(1);
  });

  it("gives up on an answer slower than timeoutMs with a timeout error", async () => {
    const server = await startTestServer(() => {});
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key", timeoutMs: 200, maxRetries: 0 });
    const error = await genq.jobs.get("job-1").catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "ConnectionError", code: "timeout", status: 0 });
  });
});
