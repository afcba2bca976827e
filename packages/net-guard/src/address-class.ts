import ipaddr from "ipaddr.js";

/**
 * What kind of address an IP is, for the SSRF guard: only `public` may be called
 * (unless an allowlist covers it).
 */
export type AddressClass =
  | "public"
  | "loopback"
  | "unspecified"
  | "private"
  | "link-local"
  | "cgnat"
  | "metadata"
  | "multicast"
  | "broadcast"
  | "reserved";

/** Cloud metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6). */
const METADATA_ADDRESSES = new Set(["169.254.169.254", "fd00:ec2::254"]);

const IPV4_CLASSES: Record<string, AddressClass> = {
  unicast: "public",
  unspecified: "unspecified",
  broadcast: "broadcast",
  multicast: "multicast",
  linkLocal: "link-local",
  loopback: "loopback",
  carrierGradeNat: "cgnat",
  private: "private",
};

const IPV6_CLASSES: Record<string, AddressClass> = {
  unicast: "public",
  unspecified: "unspecified",
  linkLocal: "link-local",
  multicast: "multicast",
  loopback: "loopback",
  uniqueLocal: "private",
  deprecatedSiteLocal: "private",
};

/** The IPv4 address in the low 32 bits of an IPv6 address. */
function low32(address: ipaddr.IPv6): ipaddr.IPv4 {
  const bytes = address.toByteArray();
  return new ipaddr.IPv4(bytes.slice(12, 16));
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const range = address.range();
  if (range === "ipv4Mapped" || range === "rfc6145" || range === "rfc6052") return low32(address);
  if (range === "6to4") return new ipaddr.IPv4(address.toByteArray().slice(2, 6));
  // IPv4-compatible (::a.b.c.d, deprecated): the first 96 bits are zero.
  if (
    address.parts.slice(0, 6).every((part) => part === 0) &&
    range !== "loopback" &&
    range !== "unspecified"
  ) {
    return low32(address);
  }
  return undefined;
}

function classifyParsed(address: ipaddr.IPv4 | ipaddr.IPv6): AddressClass {
  if (address.kind() === "ipv4") {
    const v4 = address as ipaddr.IPv4;
    if (METADATA_ADDRESSES.has(v4.toString())) return "metadata";
    return IPV4_CLASSES[v4.range()] ?? "reserved";
  }
  const v6 = address as ipaddr.IPv6;
  if (METADATA_ADDRESSES.has(v6.toString())) return "metadata";
  const inner = embeddedIPv4(v6);
  if (inner !== undefined) {
    // The embedded address is where the packets end up (NAT64 and 6to4 gateways included).
    return classifyParsed(inner);
  }
  return IPV6_CLASSES[v6.range()] ?? "reserved";
}

/**
 * Classifies an IP address (v4 or v6, in any form `ipaddr.js` parses). IPv6
 * forms that carry an IPv4 address (mapped `::ffff:127.0.0.1`, compatible,
 * NAT64 `64:ff9b::/96`, 6to4) are classified by that address. Not an IP: undefined.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const literal = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  // Zone ids (fe80::1%eth0) are link-local whatever follows.
  const withoutZone = literal.split("%")[0] ?? literal;
  if (!ipaddr.isValid(withoutZone)) return undefined;
  return classifyParsed(ipaddr.parse(withoutZone));
}

/** True for an IP address (v4 or v6, brackets allowed). */
export function isIpLiteral(host: string): boolean {
  return classifyAddress(host) !== undefined;
}
