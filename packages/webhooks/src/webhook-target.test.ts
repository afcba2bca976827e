import { describe, expect, it } from "vitest";
import { parseWebhookAllowlist } from "./webhook-allowlist.ts";
import { checkWebhookUrl, type HostLookup, resolveWebhookTarget } from "./webhook-target.ts";

const fixed =
  (...addresses: string[]): HostLookup =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

describe("checkWebhookUrl", () => {
  it.each([
    ["http://127.0.0.1/hook", "loopback"],
    ["http://10.0.0.1/hook", "private"],
    ["http://169.254.169.254/latest/meta-data", "metadata"],
    ["http://[::1]:8080/hook", "loopback"],
    ["http://[::ffff:127.0.0.1]/hook", "loopback"],
    ["http://0x7f000001/hook", "loopback"],
    ["http://2130706433/hook", "loopback"],
    ["http://0177.0.0.1/hook", "loopback"],
    ["http://127.1/hook", "loopback"],
    ["http://100.64.1.1/", "cgnat"],
  ])("refuses %s (%s)", (url, addressClass) => {
    expect(() => checkWebhookUrl(url)).toThrow(
      expect.objectContaining({
        code: "invalid_request",
        details: expect.objectContaining({ addressClass }),
      }),
    );
  });

  it("accepts public literals and hostnames (resolved later), and allowlisted literals", () => {
    expect(() => checkWebhookUrl("https://8.8.8.8/hook")).not.toThrow();
    expect(() => checkWebhookUrl("https://hooks.example.com/hook")).not.toThrow();
    expect(() =>
      checkWebhookUrl("http://127.0.0.1:9/hook", parseWebhookAllowlist("127.0.0.1")),
    ).not.toThrow();
    expect(() => checkWebhookUrl("http://10.1.2.3/hook", parseWebhookAllowlist("10.0.0.0/8"))).not.toThrow();
    expect(() => checkWebhookUrl("http://[::1]/hook", parseWebhookAllowlist("::1"))).not.toThrow();
  });

  it("refuses other schemes", () => {
    expect(() => checkWebhookUrl("ftp://example.com/")).toThrow(/http or https/);
    expect(() => checkWebhookUrl("file:///etc/passwd")).toThrow(/http or https/);
  });
});

describe("resolveWebhookTarget", () => {
  it("refuses a host when any of its addresses is not public", async () => {
    await expect(
      resolveWebhookTarget("https://hooks.example.com/", { lookup: fixed("8.8.8.8", "10.0.0.5") }),
    ).rejects.toMatchObject({ details: { address: "10.0.0.5", addressClass: "private" } });
    await expect(
      resolveWebhookTarget("https://rebind.example.com/", { lookup: fixed("::ffff:169.254.169.254") }),
    ).rejects.toMatchObject({ details: { addressClass: "metadata" } });
  });

  it("returns the checked address to connect to", async () => {
    const target = await resolveWebhookTarget("https://hooks.example.com/x", {
      lookup: fixed("93.184.215.14"),
    });
    expect(target.address).toEqual({ address: "93.184.215.14", family: 4 });
    expect(target.url.hostname).toBe("hooks.example.com");
  });

  it("lets allowlisted hostnames and ranges through", async () => {
    const allowlist = parseWebhookAllowlist("localhost, 192.168.0.0/16");
    await expect(
      resolveWebhookTarget("http://localhost:3000/", { allowlist, lookup: fixed("127.0.0.1", "::1") }),
    ).resolves.toBeDefined();
    await expect(
      resolveWebhookTarget("http://printer.lan/", { allowlist, lookup: fixed("192.168.1.20") }),
    ).resolves.toBeDefined();
    await expect(
      resolveWebhookTarget("http://other.lan/", { allowlist, lookup: fixed("10.0.0.1") }),
    ).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("rejects a malformed allowlist entry", () => {
    expect(() => parseWebhookAllowlist("10.0.0.0/99")).toThrow(/CIDR/);
    expect(() => parseWebhookAllowlist("http://x")).toThrow();
  });
});
