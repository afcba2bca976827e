import { createHash, randomBytes } from "node:crypto";

/** Every genq API key starts with this, so leaked keys are easy to scan for. */
export const API_KEY_PREFIX = "gq_";

/** A freshly generated API key: the secret is shown once and never stored. */
export interface GeneratedApiKey {
  /** The full key, `gq_<8 chars>_<43 chars>`; give it to the user once. */
  secret: string;
  /** The visible, non-secret start of the key (`gq_<8 chars>`), unique. */
  prefix: string;
  /** SHA-256 (hex) of the full key: what the database stores. */
  secretHash: string;
}

/**
 * Generates an API key. The secret part has 256 bits of entropy, so a plain
 * SHA-256 is enough to store it safely (no slow hash needed, and lookups stay O(1)).
 */
export function generateApiKey(): GeneratedApiKey {
  const prefix = `${API_KEY_PREFIX}${randomBytes(6).toString("base64url").replaceAll(/[-_]/g, "x")}`;
  const secret = `${prefix}_${randomBytes(32).toString("base64url")}`;
  return { secret, prefix, secretHash: hashApiKey(secret) };
}

/** The stored form of a key. */
export function hashApiKey(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}
