import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadPublicUrl } from "./download-public-url.ts";
import { parseHostAllowlist } from "./host-allowlist.ts";
import type { HostLookup } from "./public-target.ts";

const fixed =
  (...addresses: string[]): HostLookup =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

describe("downloadPublicUrl", () => {
  let server: ReturnType<typeof createServer>;
  let port: number;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push(request.headers);
      if (request.url === "/declared-large") {
        response.writeHead(200, { "content-type": "image/png", "content-length": String(10 * 1024 * 1024) });
        response.write(Buffer.alloc(1024));
        return; // never finishes: the client must give up on the header alone
      }
      response.writeHead(200, { "content-type": "image/png; charset=binary" });
      response.end(Buffer.from("png bytes"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const limits = { maxBytes: 1024 * 1024, timeoutMs: 5_000 };

  it("refuses a host when any of its addresses is private, even if another is public", async () => {
    await expect(
      downloadPublicUrl(`http://images.example:${port}/a.png`, {
        ...limits,
        lookup: fixed("93.184.216.34", "10.1.2.3"),
        label: "image",
      }),
    ).rejects.toMatchObject({
      code: "invalid_request",
      message: expect.stringContaining("image URL http://images.example"),
      details: { address: "10.1.2.3", addressClass: "private" },
    });
  });

  it("connects to the address it checked, keeping the hostname in Host", async () => {
    seen.length = 0;
    const body = await downloadPublicUrl(`http://images.example:${port}/a.png`, {
      ...limits,
      allowlist: parseHostAllowlist("127.0.0.1"),
      lookup: fixed("127.0.0.1"),
    });
    expect(Buffer.from(body.bytes).toString()).toBe("png bytes");
    expect(body.contentType).toBe("image/png");
    expect(seen[0]?.host).toBe(`images.example:${port}`);
  });

  it("refuses a body whose declared length is over the cap without reading it", async () => {
    await expect(
      downloadPublicUrl(`http://127.0.0.1:${port}/declared-large`, {
        ...limits,
        allowlist: parseHostAllowlist("127.0.0.1"),
      }),
    ).rejects.toMatchObject({ code: "provider_unavailable", details: { reason: "too_large" } });
  });

  it("ends with the caller's abort reason when the caller gives up", async () => {
    const controller = new AbortController();
    const reason = new Error("job canceled");
    controller.abort(reason);
    await expect(
      downloadPublicUrl(`http://127.0.0.1:${port}/a.png`, {
        ...limits,
        allowlist: parseHostAllowlist("127.0.0.1"),
        signal: controller.signal,
      }),
    ).rejects.toBe(reason);
  });
});
