import { createHmac, timingSafeEqual } from "node:crypto";
import { assertFilename } from "./content-disposition.ts";
import { assertObjectKey } from "./object-key.ts";

/** The shortest signing secret accepted: 32 characters. */
export const MIN_SIGNING_SECRET_LENGTH = 32;
/** The longest lifetime of a signed URL, the same as S3's SigV4 limit: 7 days. */
export const MAX_SIGNED_URL_SECONDS = 604_800;

const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const EXPIRES_PATTERN = /^[0-9]{1,15}$/;

/** What {@link verifyLocalSignedUrl} concluded. */
export type SignedUrlVerdict = "ok" | "expired" | "invalid";

/** Throws a `TypeError` unless `signingSecret` is a string of at least 32 characters. */
export function assertSigningSecret(signingSecret: unknown): asserts signingSecret is string {
  if (typeof signingSecret !== "string" || signingSecret.length < MIN_SIGNING_SECRET_LENGTH) {
    throw new TypeError(`signingSecret must be at least ${MIN_SIGNING_SECRET_LENGTH} characters`);
  }
}

/** Throws a `TypeError` unless `seconds` is an integer from 1 to {@link MAX_SIGNED_URL_SECONDS}. */
export function assertExpiresInSeconds(seconds: unknown): asserts seconds is number {
  if (
    !Number.isSafeInteger(seconds) ||
    (seconds as number) < 1 ||
    (seconds as number) > MAX_SIGNED_URL_SECONDS
  ) {
    throw new TypeError(`expiresInSeconds must be an integer from 1 to ${MAX_SIGNED_URL_SECONDS}`);
  }
}

/**
 * The string that is signed. Keys cannot contain a newline and `expires` is digits, so
 * the two forms (with and without a filename) can never collide.
 */
function signedMessage(key: string, expires: string, filename: string | undefined): string {
  return filename === undefined ? `GET\n${key}\n${expires}` : `GET\n${key}\n${expires}\n${filename}`;
}

function hmac(signingSecret: string, message: string): Buffer {
  return createHmac("sha256", signingSecret).update(message, "utf8").digest();
}

/** Options for {@link signLocalGetUrl}. */
export interface SignLocalGetUrlOptions {
  signingSecret: string;
  /** Where the API serves assets, e.g. `http://127.0.0.1:3000/v1/assets` (no trailing slash needed). */
  publicBaseUrl: string;
  key: string;
  /** Unix time in seconds after which the URL is refused. */
  expires: number;
  /** Download name; becomes the `filename` query parameter and is covered by the signature. */
  filename?: string;
}

/**
 * Builds `${publicBaseUrl}/${key}?expires=<unix seconds>&signature=<sig>` where `sig` is
 * the unpadded base64url HMAC-SHA256, keyed with the signing secret, of
 * `"GET\n<key>\n<expires>"` — or, with a filename, of `"GET\n<key>\n<expires>\n<filename>"`
 * and `&filename=<percent-encoded>` appended.
 */
export function signLocalGetUrl(options: SignLocalGetUrlOptions): string {
  const { signingSecret, publicBaseUrl, key, expires, filename } = options;
  assertObjectKey(key);
  if (filename !== undefined) assertFilename(filename);
  const expiresText = String(expires);
  const signature = hmac(signingSecret, signedMessage(key, expiresText, filename)).toString("base64url");
  const query = new URLSearchParams({ expires: expiresText, signature });
  if (filename !== undefined) query.set("filename", filename);
  // Keys only use URL-safe characters, so they go into the path as they are.
  return `${publicBaseUrl.replace(/\/+$/, "")}/${key}?${query.toString()}`;
}

/** Options for {@link verifyLocalSignedUrl}. */
export interface VerifyLocalSignedUrlOptions {
  signingSecret: string;
  /** The key from the request path (after the base path). */
  key: string;
  /** The `expires` query parameter as received. */
  expires: string | number | undefined;
  /** The `signature` query parameter as received. */
  signature: string | undefined;
  /** The `filename` query parameter as received, when present. */
  filename?: string | undefined;
  /** The current time; defaults to now. */
  now?: Date;
}

/**
 * Checks a local signed URL's parameters. `"invalid"` for anything malformed, a bad key
 * or a signature that does not match (compared in constant time); `"expired"` only for a
 * genuine signature whose time has passed; otherwise `"ok"`. The signature is checked
 * first, so a tampered URL never learns whether it is expired.
 */
export function verifyLocalSignedUrl(options: VerifyLocalSignedUrlOptions): SignedUrlVerdict {
  const { signingSecret, key, expires, signature, filename, now = new Date() } = options;
  const expiresText = typeof expires === "number" ? String(expires) : expires;
  if (
    expiresText === undefined ||
    !EXPIRES_PATTERN.test(expiresText) ||
    signature === undefined ||
    !SIGNATURE_PATTERN.test(signature)
  ) {
    return "invalid";
  }
  try {
    assertObjectKey(key);
    if (filename !== undefined) assertFilename(filename);
  } catch {
    return "invalid";
  }
  // Compare the text, not decoded bytes: base64url has several spellings of the same
  // bytes, and only the canonical one is ever issued. Both are 43 ASCII characters.
  const expected = Buffer.from(
    hmac(signingSecret, signedMessage(key, expiresText, filename)).toString("base64url"),
  );
  if (!timingSafeEqual(Buffer.from(signature), expected)) return "invalid";
  return now.getTime() >= Number(expiresText) * 1000 ? "expired" : "ok";
}
