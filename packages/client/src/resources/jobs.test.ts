import { afterEach, describe, expect, it } from "vitest";
import { GenqClient } from "../genq-client.ts";
import { startTestServer } from "../test-server.ts";

let close: (() => Promise<void>) | undefined;

afterEach(async () => {
  await close?.();
  close = undefined;
});

const job = (status: string) => ({ id: "j", object: "job", type: "text", status, calls: [] });

describe("jobs.wait", () => {
  it("finishes by polling when the terminal event never comes (lost, or held back by the server)", async () => {
    let reads = 0;
    const server = await startTestServer((request, response) => {
      if (request.url?.endsWith("/events")) {
        // An open stream that only ever says it is alive.
        response.writeHead(200, { "content-type": "text/event-stream" }).write(": keep-alive\n\n");
        return;
      }
      reads += 1;
      response
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify(job(reads >= 2 ? "completed" : "active")));
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    const started = Date.now();
    const done = await genq.jobs.wait("j", { pollIntervalMs: 100, timeoutMs: 5_000 });
    expect(done.status).toBe("completed");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("answers from the terminal event without waiting for the next poll", async () => {
    let reads = 0;
    let streamed = false;
    const server = await startTestServer((request, response) => {
      if (request.url?.endsWith("/events")) {
        streamed = true;
        response
          .writeHead(200, { "content-type": "text/event-stream" })
          .end(
            'id: 1-0\nevent: job.completed\ndata: {"id":"j","object":"job","type":"text","status":"completed"}\n\n',
          );
        return;
      }
      reads += 1;
      response
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify(job(streamed ? "completed" : "queued")));
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    const started = Date.now();
    const done = await genq.jobs.wait("j", { pollIntervalMs: 60_000, timeoutMs: 5_000 });
    expect(done.status).toBe("completed");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(reads).toBe(2);
  });

  it("gives up after timeoutMs with a WaitTimeoutError", async () => {
    const server = await startTestServer((request, response) => {
      if (request.url?.endsWith("/events")) {
        response.writeHead(200, { "content-type": "text/event-stream" }).write(": keep-alive\n\n");
        return;
      }
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(job("active")));
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    await expect(genq.jobs.wait("j", { timeoutMs: 300, pollIntervalMs: 50 })).rejects.toMatchObject({
      name: "WaitTimeoutError",
      code: "timeout",
    });
  });
});
