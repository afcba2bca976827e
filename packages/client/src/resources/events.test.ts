import { afterEach, describe, expect, it } from "vitest";
import { GenqClient } from "../genq-client.ts";
import { startTestServer } from "../test-server.ts";
import type { LiveEvent } from "../types.ts";

let close: (() => Promise<void>) | undefined;

afterEach(async () => {
  await close?.();
  close = undefined;
});

const started =
  'id: 1-0\nevent: job.started\ndata: {"id":"j","object":"job","status":"active","attempt":1}\n\n';
const delta = 'id: 2-0\nevent: job.delta\ndata: {"id":"j","attempt":1,"delta":"hello"}\n\n';
const completed =
  'id: 3-0\nevent: job.completed\ndata: {"id":"j","object":"job","type":"text","status":"completed"}\n\n';

describe("events.stream", () => {
  it("resumes a dropped stream with Last-Event-ID, losing and repeating nothing", async () => {
    const requests: Array<{ lastEventId: string | undefined; authorization: string | undefined }> = [];
    const server = await startTestServer((request, response) => {
      requests.push({
        lastEventId: request.headers["last-event-id"] as string | undefined,
        authorization: request.headers.authorization,
      });
      response.writeHead(200, { "content-type": "text/event-stream" });
      if (requests.length === 1) {
        // Two events, then the connection dies without an end (a proxy timeout, a restart).
        response.write(`retry: 50\n\n${started}${delta}`);
        setTimeout(() => response.socket?.destroy(), 50);
        return;
      }
      response.end(completed);
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "secret-key" });
    const events: LiveEvent[] = [];
    for await (const event of genq.events.stream("j")) events.push(event);
    expect(events.map((event) => [event.id, event.type])).toEqual([
      ["1-0", "job.started"],
      ["2-0", "job.delta"],
      ["3-0", "job.completed"],
    ]);
    expect(requests).toEqual([
      { lastEventId: undefined, authorization: "Bearer secret-key" },
      { lastEventId: "2-0", authorization: "Bearer secret-key" },
    ]);
  });

  it("starts after the lastEventId it is given", async () => {
    let seen: string | undefined;
    const server = await startTestServer((request, response) => {
      seen = request.headers["last-event-id"] as string | undefined;
      response.writeHead(200, { "content-type": "text/event-stream" }).end(completed);
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    for await (const _ of genq.events.stream("j", { lastEventId: "2-0" })) {
      // drain
    }
    expect(seen).toBe("2-0");
  });

  it("gives up after maxReconnects drops in a row without an event", async () => {
    let connections = 0;
    const server = await startTestServer((_request, response) => {
      connections += 1;
      response.writeHead(200, { "content-type": "text/event-stream" }).end("retry: 10\n\n");
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    const stream = genq.events.stream("j", { maxReconnects: 2 });
    await expect(stream.next()).rejects.toMatchObject({ code: "connection_error" });
    expect(connections).toBe(3);
  });

  it("does not reconnect after a 404", async () => {
    let connections = 0;
    const server = await startTestServer((_request, response) => {
      connections += 1;
      response
        .writeHead(404, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { code: "not_found", message: "job j not found" } }));
    });
    close = server.close;
    const genq = new GenqClient({ baseUrl: server.url, apiKey: "key" });
    await expect(genq.events.stream("j").next()).rejects.toMatchObject({ status: 404, code: "not_found" });
    expect(connections).toBe(1);
  });
});
