import { createHmac } from "node:crypto";

const SECRET_PREFIX = "whsec_";

/** The key bytes of a `whsec_<base64>` secret (a bare base64 secret is accepted too). */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(encoded, "base64");
}

/**
 * One Standard Webhooks signature: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 * `timestamp` in whole seconds since the epoch.
 */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const digest = createHmac("sha256", secretKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest("base64");
  return `v1,${digest}`;
}

/** A signer's secrets: the current one, and the one before it while its grace period lasts. */
export interface SignatureSecrets {
  secret: string;
  previousSecret?: string | null | undefined;
  previousSecretExpiresAt?: Date | null | undefined;
}

/**
 * The `webhook-signature` header: the current secret's signature, followed by the
 * previous secret's while it is in its grace period (space-separated), so a
 * receiver holding either secret verifies the delivery.
 */
export function signatureHeader(
  secrets: SignatureSecrets,
  id: string,
  timestamp: number,
  body: string,
  now: Date = new Date(),
): string {
  const signatures = [sign(secrets.secret, id, timestamp, body)];
  const expiresAt = secrets.previousSecretExpiresAt;
  if (
    secrets.previousSecret !== null &&
    secrets.previousSecret !== undefined &&
    expiresAt !== null &&
    expiresAt !== undefined &&
    expiresAt.getTime() > now.getTime()
  ) {
    signatures.push(sign(secrets.previousSecret, id, timestamp, body));
  }
  return signatures.join(" ");
}

/** The three Standard Webhooks headers of a delivery (the id is the message id, stable across retries). */
export function webhookHeaders(
  secrets: SignatureSecrets,
  id: string,
  body: string,
  now: Date = new Date(),
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  const timestamp = Math.floor(now.getTime() / 1_000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatureHeader(secrets, id, timestamp, body, now),
  };
}
