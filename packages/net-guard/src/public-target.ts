import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import { GenqError } from "@genq/core";
import { type AddressClass, classifyAddress } from "./address-class.ts";
import { allowsAddress, allowsHostname, EMPTY_ALLOWLIST, type HostAllowlist } from "./host-allowlist.ts";

/** A resolved address a request may connect to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * What a guarded URL is for, in messages: `"webhook"` gives "webhook URL … is
 * refused … (webhook URLs must point at public addresses)". Default `"outbound"`.
 */
export type TargetLabel = string;

/** A URL the SSRF guard refused: the host is, or resolves to, a non-public address. */
export class PublicTargetRefusedError extends GenqError {
  override readonly name = "PublicTargetRefusedError";
  constructor(
    readonly url: string,
    readonly host: string,
    readonly address: string,
    readonly addressClass: AddressClass,
    label: TargetLabel = "outbound",
  ) {
    super(
      "invalid_request",
      `${label} URL ${url} is refused: ${host === address ? host : `${host} resolves to ${address}`}, a ${addressClass} address` +
        ` (${label} URLs must point at public addresses)`,
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

function parseHttpUrl(url: string, label: TargetLabel): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GenqError("invalid_request", `${label} URL is not a URL: ${url}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new GenqError("invalid_request", `${label} URL must be http or https: ${url}`);
  }
  return parsed;
}

/** Options of {@link checkPublicUrl} and {@link resolvePublicTarget}. */
export interface PublicTargetOptions {
  allowlist?: HostAllowlist | undefined;
  lookup?: HostLookup | undefined;
  /** Names the URL in messages. Default `"outbound"`. */
  label?: TargetLabel | undefined;
}

/**
 * Checks a URL without resolving it: http(s), and an IP-literal host
 * (`http://127.0.0.1`, `http://[::1]`, `http://0x7f000001` as WHATWG URL
 * normalizes it) must be public or allowlisted. For submit-time checks; requests
 * use {@link resolvePublicTarget}. Throws {@link PublicTargetRefusedError}.
 */
export function checkPublicUrl(url: string, options: PublicTargetOptions = {}): void {
  const allowlist = options.allowlist ?? EMPTY_ALLOWLIST;
  const parsed = parseHttpUrl(url, options.label ?? "outbound");
  const host = bareHostname(parsed);
  const addressClass = classifyAddress(host);
  if (addressClass === undefined || addressClass === "public") return;
  if (allowsHostname(allowlist, host) || allowsAddress(allowlist, host)) return;
  throw new PublicTargetRefusedError(url, host, host, addressClass, options.label);
}

/**
 * Resolves a URL's host and checks every address: if ANY is loopback, private,
 * link-local, CGNAT, metadata, multicast or reserved (and not allowlisted), the
 * URL is refused. Returns the address to connect to (see {@link pinnedLookup}),
 * so the connection goes where the check looked (no DNS rebinding in between).
 */
export async function resolvePublicTarget(
  url: string,
  options: PublicTargetOptions = {},
): Promise<{ url: URL; address: ResolvedAddress }> {
  const allowlist = options.allowlist ?? EMPTY_ALLOWLIST;
  const label = options.label ?? "outbound";
  const parsed = parseHttpUrl(url, label);
  const host = bareHostname(parsed);
  const literal = classifyAddress(host);
  const addresses: ResolvedAddress[] =
    literal === undefined
      ? await (options.lookup ?? systemLookup)(host)
      : [{ address: host, family: host.includes(":") ? 6 : 4 }];
  if (addresses.length === 0) throw new GenqError("invalid_request", `${label} host ${host} has no address`);
  const hostAllowed = allowsHostname(allowlist, host);
  for (const entry of addresses) {
    const addressClass = classifyAddress(entry.address) ?? "reserved";
    if (addressClass === "public" || hostAllowed || allowsAddress(allowlist, entry.address)) continue;
    throw new PublicTargetRefusedError(url, host, entry.address, addressClass, label);
  }
  return { url: parsed, address: addresses[0] as ResolvedAddress };
}

/**
 * A `lookup` for `http.request` that answers with the address the guard already
 * checked, whatever the host: Host and TLS SNI stay the hostname.
 */
export function pinnedLookup(address: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (typeof options === "object" && options !== null && (options as { all?: boolean }).all === true) {
      (callback as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [
        { address: address.address, family: address.family },
      ]);
      return;
    }
    callback(null, address.address, address.family);
  };
}
