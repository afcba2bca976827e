import type { PutObjectOptions } from "./object-storage.ts";

const SHA256_HEX_PATTERN = /^[0-9a-fA-F]{64}$/;
// type "/" subtype, optional parameters; no CR/LF so it is safe as a header value.
const CONTENT_TYPE_PATTERN =
  /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(?:\s*;\s*[\w!#$&^.+-]+=(?:[\w!#$&^.+-]+|"[^"\r\n]*"))*$/;

/** {@link PutObjectOptions} after validation: sha256 lowercased. */
export interface ValidatedPutOptions {
  contentType: string;
  sha256: string | undefined;
  contentLength: number | undefined;
}

/** Throws a `TypeError` for a malformed content type, checksum or length. */
export function validatePutOptions(options: PutObjectOptions): ValidatedPutOptions {
  const { contentType, sha256, contentLength } = options;
  if (typeof contentType !== "string" || !CONTENT_TYPE_PATTERN.test(contentType)) {
    throw new TypeError(
      `contentType must be a MIME type such as "image/png", got ${JSON.stringify(contentType)}`,
    );
  }
  if (sha256 !== undefined && (typeof sha256 !== "string" || !SHA256_HEX_PATTERN.test(sha256))) {
    throw new TypeError("sha256 must be 64 hexadecimal characters");
  }
  if (contentLength !== undefined && (!Number.isSafeInteger(contentLength) || contentLength < 0)) {
    throw new TypeError("contentLength must be a non-negative integer");
  }
  return { contentType, sha256: sha256?.toLowerCase(), contentLength };
}
