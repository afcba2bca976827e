import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { z } from "zod";
import { GenqError } from "./errors.ts";

/** One encryption key of a {@link SecretBox}'s ring. */
export interface SecretBoxKey {
  /** A short, non-secret name stored next to each ciphertext (`k1`, `2026-11`). */
  id: string;
  /** 32 random bytes (AES-256). */
  key: Buffer;
}

/** A sealed secret, as stored: which key sealed it and `base64(iv ‖ tag ‖ data)`. */
export interface SealedSecret {
  keyId: string;
  ciphertext: string;
}

/** Options for {@link createSecretBox}. */
export interface SecretBoxOptions {
  keys: SecretBoxKey[];
  /** The key new secrets are sealed with; every key of the ring still opens. */
  currentKeyId: string;
}

/**
 * AES-256-GCM with a key ring. `seal` always uses the current key; `open` uses the
 * key named by the sealed value, so keys can rotate: add a new key as current,
 * keep the old ones until nothing sealed with them is left.
 *
 * `context` (optional, both ways) is authenticated but not stored: a value sealed
 * for one context does not open for another (e.g. a row copied to another user).
 */
export interface SecretBox {
  readonly currentKeyId: string;
  readonly keyIds: readonly string[];
  seal(plaintext: string, context?: string): SealedSecret;
  open(sealed: SealedSecret, context?: string): string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** Creates a {@link SecretBox}; throws when the ring is empty, a key is not 32 bytes or the current id is missing. */
export function createSecretBox(options: SecretBoxOptions): SecretBox {
  const ring = new Map<string, Buffer>();
  for (const entry of options.keys) {
    if (!KEY_ID.test(entry.id))
      throw new Error(`secret box: key id ${JSON.stringify(entry.id)} must match ${KEY_ID}`);
    if (entry.key.length !== KEY_BYTES) {
      throw new Error(`secret box: key ${entry.id} must be ${KEY_BYTES} bytes (got ${entry.key.length})`);
    }
    if (ring.has(entry.id)) throw new Error(`secret box: key id ${entry.id} appears twice`);
    // A private copy: the caller's buffer may be reused or zeroed.
    ring.set(entry.id, Buffer.from(entry.key));
  }
  const current = ring.get(options.currentKeyId);
  if (current === undefined) {
    throw new Error(
      `secret box: the current key id ${JSON.stringify(options.currentKeyId)} is not in the ring`,
    );
  }
  const currentKeyId = options.currentKeyId;

  return {
    currentKeyId,
    keyIds: [...ring.keys()],
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      cipher.setAAD(associatedData(currentKeyId, context));
      const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return {
        keyId: currentKeyId,
        ciphertext: Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64"),
      };
    },
    open(sealed, context) {
      const key = ring.get(sealed.keyId);
      if (key === undefined) {
        throw new GenqError(
          "internal_error",
          `secret box: no key ${JSON.stringify(sealed.keyId)} in the ring (was it removed before its secrets were re-sealed?)`,
        );
      }
      const bytes = Buffer.from(sealed.ciphertext, "base64");
      if (bytes.length < IV_BYTES + TAG_BYTES) {
        throw new GenqError("internal_error", "secret box: the ciphertext is too short");
      }
      const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      decipher.setAAD(associatedData(sealed.keyId, context));
      try {
        return Buffer.concat([
          decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)),
          decipher.final(),
        ]).toString("utf8");
      } catch (error) {
        // Never the ciphertext or the key in the message.
        throw new GenqError(
          "internal_error",
          `secret box: the secret sealed with key ${sealed.keyId} does not authenticate (tampered, or another context)`,
          { cause: error },
        );
      }
    },
  };
}

/** The key id is bound too, so relabelling a ciphertext with another id fails. */
function associatedData(keyId: string, context: string | undefined): Buffer {
  return Buffer.from(`${keyId}\u0000${context ?? ""}`, "utf8");
}

/**
 * Parses a key ring from text such as `GENQ_ENCRYPTION_KEYS`:
 * `"k2:<base64 of 32 bytes>,k1:<base64>"` — comma-separated `id:key`, the first one
 * current. Errors name the entry by position and id, never its key material.
 * Generate a key with `openssl rand -base64 32`.
 */
export function parseKeyRing(text: string): SecretBoxOptions {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) {
    throw new Error(
      "expected at least one id:key entry (id:<base64 of 32 bytes>, comma-separated, current first)",
    );
  }
  const keys: SecretBoxKey[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    const position = `entry ${index + 1}`;
    const colon = entry.indexOf(":");
    if (colon === -1) throw new Error(`${position} is not id:key (no colon)`);
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) throw new Error(`${position}: the id must match ${KEY_ID}`);
    if (seen.has(id)) throw new Error(`${position}: the id ${id} appears twice`);
    seen.add(id);
    if (!BASE64.test(encoded)) throw new Error(`${position} (${id}): the key is not base64`);
    const key = Buffer.from(encoded, "base64");
    if (key.length !== KEY_BYTES) {
      throw new Error(
        `${position} (${id}): the key must be ${KEY_BYTES} bytes of base64, got ${key.length} bytes`,
      );
    }
    keys.push({ id, key });
  });
  // entries is non-empty, so keys[0] exists.
  return { keys, currentKeyId: (keys[0] as SecretBoxKey).id };
}

/**
 * The `GENQ_ENCRYPTION_KEYS` variable: `id:<base64 of 32 bytes>`, comma-separated, the
 * first one current (`openssl rand -base64 32`). API and workers need the same value.
 */
export const EncryptionKeysVariable = z.string().superRefine((text, context) => {
  try {
    parseKeyRing(text);
  } catch (error) {
    // parseKeyRing's messages name entries by position and id, never key material.
    context.addIssue({ code: "custom", message: (error as Error).message });
  }
});
