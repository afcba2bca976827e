import { WebhookVerificationError } from "./errors.ts";
import type { WebhookEvent } from "./types.ts";

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /**
   * How far `webhook-timestamp` may be from now, either way, in seconds: an older
   * delivery is refused as a possible replay.
   * @defaultValue 300
   */
  toleranceSeconds?: number;
  /** The current time (tests). @defaultValue `new Date()` */
  now?: Date;
}

/** Request headers as Node (`IncomingHttpHeaders`), fetch (`Headers`) or a plain object has them. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

const SECRET_PREFIX = "whsec_";
const encoder = new TextEncoder();

/**
 * Verifies a genq webhook delivery (Standard Webhooks) and returns its typed event.
 *
 * `body` must be the raw body as received (text or bytes, not re-serialized JSON).
 * Checks: the three `webhook-*` headers are present, `webhook-timestamp` is within
 * the tolerance, and one of the `v1,<base64>` signatures in `webhook-signature`
 * (several while a rotated secret is in its grace period) is the HMAC-SHA256 of
 * `id.timestamp.body` under `secret` (`whsec_<base64>`, as genq shows it). The comparison
 * is WebCrypto's `verify` (constant time), so this runs in browsers and edge runtimes too.
 *
 * @throws {WebhookVerificationError} when any check fails.
 */
export async function verifyWebhook(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyWebhookOptions = {},
): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (id === undefined || timestamp === undefined || signatures === undefined) {
    throw new WebhookVerificationError(
      "missing webhook-id, webhook-timestamp or webhook-signature header (is this a genq delivery?)",
    );
  }
  if (!/^\d+$/.test(timestamp))
    throw new WebhookVerificationError("webhook-timestamp is not a number of seconds");
  const toleranceSeconds = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1_000);
  const sentAt = Number(timestamp);
  if (nowSeconds - sentAt > toleranceSeconds) {
    throw new WebhookVerificationError(`the delivery is too old (sent ${nowSeconds - sentAt} s ago)`);
  }
  if (sentAt - nowSeconds > toleranceSeconds) {
    throw new WebhookVerificationError("the delivery's timestamp is in the future");
  }
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  const key = await importSecret(secret);
  const signed = encoder.encode(`${id}.${timestamp}.${text}`);
  for (const candidate of signatures.split(" ")) {
    const [version, encoded] = candidate.split(",", 2);
    if (version !== "v1" || encoded === undefined) continue;
    const signature = decodeBase64(encoded);
    if (signature === undefined) continue;
    if (await crypto.subtle.verify("HMAC", key, signature, signed)) return parseEvent(text);
  }
  throw new WebhookVerificationError("no signature matches: wrong secret, or the body was changed");
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  // Node lowercases header names; a hand-built object may not.
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

async function importSecret(secret: string) {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = decodeBase64(encoded);
  if (bytes === undefined || bytes.length === 0) {
    throw new WebhookVerificationError("the secret is not a whsec_<base64> webhook secret");
  }
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
    return bytes;
  } catch {
    return undefined;
  }
}

function parseEvent(text: string): WebhookEvent {
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    throw new WebhookVerificationError("the signed body is not JSON");
  }
  const candidate = event as { type?: unknown; data?: unknown } | null;
  if (typeof candidate?.type !== "string" || typeof candidate.data !== "object" || candidate.data === null) {
    throw new WebhookVerificationError("the signed body is not a genq event ({type, timestamp, data})");
  }
  return event as WebhookEvent;
}
