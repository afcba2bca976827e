import { lookup as dnsLookup } from "node:dns/promises";
import { GenqError } from "@genq/core";
import { type AddressClass, classifyAddress } from "./address-class.ts";
import {
  allowsAddress,
  allowsHostname,
  EMPTY_ALLOWLIST,
  type WebhookAllowlist,
} from "./webhook-allowlist.ts";

/** A resolved address a delivery may connect to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** A webhook URL the SSRF guard refused: the host is, or resolves to, a non-public address. */
export class WebhookTargetRefusedError extends GenqError {
  override readonly name = "WebhookTargetRefusedError";
  constructor(
    readonly url: string,
    readonly host: string,
    readonly address: string,
    readonly addressClass: AddressClass,
  ) {
    super(
      "invalid_request",
      `webhook URL ${url} is refused: ${host === address ? host : `${host} resolves to ${address}`}, a ${addressClass} address` +
        " (webhooks may only call public addresses)",
      { details: { host, address, addressClass } },
    );
  }
}

/** The lookup the guard resolves hosts with (tests inject one). */
export type HostLookup = (hostname: string) => Promise<ResolvedAddress[]>;

/** Resolves with the system resolver, every address (IPv4 and IPv6). */
export const systemLookup: HostLookup = async (hostname) => {
  const addresses = await dnsLookup(hostname, { all: true, verbatim: true });
  return addresses.map((entry) => ({ address: entry.address, family: entry.family === 6 ? 6 : 4 }));
};

/** The hostname of a URL without IPv6 brackets. */
export function bareHostname(url: URL): string {
  const host = url.hostname;
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function parseHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GenqError("invalid_request", `webhook URL is not a URL: ${url}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new GenqError("invalid_request", `webhook URL must be http or https: ${url}`);
  }
  return parsed;
}

/**
 * Checks a webhook URL without resolving it: http(s), and an IP-literal host
 * (`http://127.0.0.1`, `http://[::1]`, `http://0x7f000001` as WHATWG URL
 * normalizes it) must be public or allowlisted. For submit-time checks; delivery
 * uses {@link resolveWebhookTarget}. Throws {@link WebhookTargetRefusedError}.
 */
export function checkWebhookUrl(url: string, allowlist: WebhookAllowlist = EMPTY_ALLOWLIST): void {
  const parsed = parseHttpUrl(url);
  const host = bareHostname(parsed);
  const addressClass = classifyAddress(host);
  if (addressClass === undefined || addressClass === "public") return;
  if (allowsHostname(allowlist, host) || allowsAddress(allowlist, host)) return;
  throw new WebhookTargetRefusedError(url, host, host, addressClass);
}

/**
 * Resolves a webhook URL's host and checks every address: if ANY is loopback,
 * private, link-local, CGNAT, metadata, multicast or reserved (and not
 * allowlisted), the URL is refused. Returns the address to connect to, so the
 * connection goes where the check looked (no DNS rebinding in between).
 */
export async function resolveWebhookTarget(
  url: string,
  options: { allowlist?: WebhookAllowlist | undefined; lookup?: HostLookup | undefined } = {},
): Promise<{ url: URL; address: ResolvedAddress }> {
  const allowlist = options.allowlist ?? EMPTY_ALLOWLIST;
  const parsed = parseHttpUrl(url);
  const host = bareHostname(parsed);
  const literal = classifyAddress(host);
  const addresses: ResolvedAddress[] =
    literal === undefined
      ? await (options.lookup ?? systemLookup)(host)
      : [{ address: host, family: host.includes(":") ? 6 : 4 }];
  if (addresses.length === 0) throw new GenqError("invalid_request", `webhook host ${host} has no address`);
  const hostAllowed = allowsHostname(allowlist, host);
  for (const entry of addresses) {
    const addressClass = classifyAddress(entry.address) ?? "reserved";
    if (addressClass === "public" || hostAllowed || allowsAddress(allowlist, entry.address)) continue;
    throw new WebhookTargetRefusedError(url, host, entry.address, addressClass);
  }
  return { url: parsed, address: addresses[0] as ResolvedAddress };
}

/**
 * The create-time check of an endpoint URL: {@link checkWebhookUrl}, then the
 * host's current addresses. A host that does not resolve (yet) is accepted: every
 * delivery checks again.
 */
export async function checkWebhookTarget(
  url: string,
  allowlist: WebhookAllowlist = EMPTY_ALLOWLIST,
  lookup?: HostLookup,
): Promise<void> {
  checkWebhookUrl(url, allowlist);
  try {
    await resolveWebhookTarget(url, { allowlist, lookup });
  } catch (error) {
    if (error instanceof WebhookTargetRefusedError) throw error;
  }
}
