import ipaddr from "ipaddr.js";

/**
 * Hosts the SSRF guard lets through even when they resolve to private or
 * loopback addresses (development and tests): hostnames (exact, any case), IP
 * addresses and CIDR ranges. Parsed from `GENQ_WEBHOOK_ALLOWED_HOSTS` (webhooks)
 * and `GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS` (provider image URLs).
 */
export interface HostAllowlist {
  hostnames: ReadonlySet<string>;
  ranges: ReadonlyArray<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

/** An allowlist that allows nothing extra. */
export const EMPTY_ALLOWLIST: HostAllowlist = { hostnames: new Set(), ranges: [] };

/**
 * Parses a comma-separated allowlist (`localhost,127.0.0.1,10.0.0.0/8,::1`).
 * Throws on an entry that is neither a hostname, an IP address nor a CIDR range.
 */
export function parseHostAllowlist(value: string | readonly string[] | undefined): HostAllowlist {
  const entries = (typeof value === "string" ? value.split(",") : (value ?? []))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  const hostnames = new Set<string>();
  const ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const entry of entries) {
    const bare = entry.startsWith("[") && entry.endsWith("]") ? entry.slice(1, -1) : entry;
    if (bare.includes("/")) {
      if (!ipaddr.isValidCIDR(bare)) throw new Error(`not a CIDR range: ${entry}`);
      ranges.push(ipaddr.parseCIDR(bare));
    } else if (ipaddr.isValid(bare)) {
      const address = ipaddr.parse(bare);
      ranges.push([address, address.kind() === "ipv4" ? 32 : 128]);
    } else if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(bare)) {
      hostnames.add(bare.toLowerCase().replace(/\.$/, ""));
    } else {
      throw new Error(`not a hostname, IP address or CIDR range: ${entry}`);
    }
  }
  return { hostnames, ranges };
}

/** True when the allowlist names this hostname. */
export function allowsHostname(allowlist: HostAllowlist, hostname: string): boolean {
  return allowlist.hostnames.has(hostname.toLowerCase().replace(/\.$/, ""));
}

/** True when the allowlist covers this IP address (IPv4-mapped IPv6 compared as IPv4). */
export function allowsAddress(allowlist: HostAllowlist, address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  return allowlist.ranges.some(([range, bits]) => {
    if (range.kind() !== parsed.kind()) return false;
    return parsed.match(range, bits);
  });
}
