import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postWebhook } from "./post-webhook.ts";
import { parseWebhookAllowlist } from "./webhook-allowlist.ts";

const routes = new Map<string, (request: IncomingMessage, response: ServerResponse) => void>();
const seen: Array<{ path: string; host: string | undefined; body: string }> = [];
let server: Server;
let port: number;
const allowlist = parseWebhookAllowlist("127.0.0.1");

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      seen.push({ path: request.url ?? "", host: request.headers.host, body });
      (routes.get(request.url ?? "") ?? ((_, res) => res.writeHead(200).end("ok")))(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  routes.set("/redirect", (_, response) => response.writeHead(302, { location: "/ok" }).end());
  routes.set("/slow", () => {});
  routes.set("/big", (_, response) => response.writeHead(500).end("x".repeat(10_000)));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const post = (path: string, extra: Partial<Parameters<typeof postWebhook>[0]> = {}) =>
  postWebhook({ url: `http://127.0.0.1:${port}${path}`, headers: {}, body: "{}", allowlist, ...extra });

describe("postWebhook", () => {
  it("delivers on a 2xx and keeps the answer's first bytes", async () => {
    const result = await post("/ok");
    expect(result).toMatchObject({ outcome: "delivered", status: 200, excerpt: "ok", errorMessage: null });
  });

  it("does not follow redirects: a 3xx is a failed attempt", async () => {
    const before = seen.length;
    const result = await post("/redirect");
    expect(result).toMatchObject({ outcome: "failed", status: 302 });
    expect(result.errorMessage).toContain("not followed");
    expect(seen.slice(before).map((entry) => entry.path)).toEqual(["/redirect"]);
  });

  it("gives up after the timeout", async () => {
    const result = await post("/slow", { timeoutMs: 300 });
    expect(result).toMatchObject({ outcome: "timeout", status: null });
    expect(result.latencyMs).toBeGreaterThanOrEqual(250);
  });

  it("keeps at most 1 KiB of the answer", async () => {
    const result = await post("/big");
    expect(result).toMatchObject({ outcome: "failed", status: 500 });
    expect(result.excerpt).toHaveLength(1_024);
  });

  it("connects to the address it checked, keeping the hostname in Host", async () => {
    let lookups = 0;
    const result = await postWebhook({
      url: `http://hooks.example.test:${port}/pinned`,
      headers: {},
      body: "{}",
      allowlist,
      lookup: async () => {
        lookups += 1;
        // A rebinding resolver would answer differently the second time; it is asked once.
        return lookups === 1 ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "10.0.0.1", family: 4 }];
      },
    });
    expect(result.outcome).toBe("delivered");
    expect(lookups).toBe(1);
    expect(seen.at(-1)).toMatchObject({ path: "/pinned", host: `hooks.example.test:${port}` });
  });

  it("refuses a private target without calling it", async () => {
    const before = seen.length;
    const result = await postWebhook({ url: `http://127.0.0.1:${port}/ok`, headers: {}, body: "{}" });
    expect(result).toMatchObject({ outcome: "refused", status: null });
    expect(result.errorMessage).toContain("loopback");
    expect(seen.length).toBe(before);
  });
});
