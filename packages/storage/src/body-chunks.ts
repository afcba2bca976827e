import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import type { ValidatedPutOptions } from "./put-options.ts";
import { ObjectIntegrityError } from "./storage-errors.ts";

/** A byte view of `bytes` without copying. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function chunkToBuffer(chunk: unknown): Buffer {
  if (chunk instanceof Uint8Array) return toBuffer(chunk);
  // A stream with setEncoding() yields strings; they cannot be turned back into the exact bytes.
  throw new TypeError("Stream bodies must yield bytes (Buffer or Uint8Array), not strings or objects");
}

/**
 * Counts and hashes a stream's bytes as they pass through, and checks the totals
 * against what the caller declared once the stream ends.
 */
export class BodyDigest {
  private readonly hash: Hash = createHash("sha256");
  private digest: string | undefined;
  bytes = 0;

  constructor(
    private readonly key: string,
    private readonly expected: ValidatedPutOptions,
  ) {}

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /**
   * The hex digest of everything passed to `update`; throws {@link ObjectIntegrityError}
   * if it or the length differ from the declared ones. May be called again.
   */
  finish(): string {
    this.digest ??= this.hash.digest("hex");
    const sha256 = this.digest;
    const { contentLength, sha256: expectedSha256 } = this.expected;
    if (contentLength !== undefined && contentLength !== this.bytes) {
      throw new ObjectIntegrityError(this.key, "bytes", contentLength, this.bytes);
    }
    if (expectedSha256 !== undefined && expectedSha256 !== sha256) {
      throw new ObjectIntegrityError(this.key, "sha256", expectedSha256, sha256);
    }
    return sha256;
  }
}

/** Checks an in-memory body against the declared length and checksum; returns its sha256. */
export function digestBytes(key: string, body: Buffer, expected: ValidatedPutOptions): string {
  const digest = new BodyDigest(key, expected);
  digest.update(body);
  return digest.finish();
}

/** The start of a stream read into memory, and whether that was all of it. */
export interface StreamHead {
  chunks: Buffer[];
  bytes: number;
  /** True when the stream ended within the limit: `chunks` is the whole body. */
  complete: boolean;
  /** The rest of the stream; continue reading here when not complete. */
  rest: AsyncIterator<unknown>;
}

/**
 * Reads from `body` until more than `limit` bytes arrived or it ended. Lets a small
 * stream be written (and verified) in one request, and a large one go multipart.
 */
export async function readStreamHead(body: Readable, limit: number): Promise<StreamHead> {
  const rest = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let bytes = 0;
  while (bytes <= limit) {
    const next = await rest.next();
    if (next.done) return { chunks, bytes, complete: true, rest };
    const chunk = chunkToBuffer(next.value);
    chunks.push(chunk);
    bytes += chunk.byteLength;
  }
  return { chunks, bytes, complete: false, rest };
}

/**
 * The head chunks then the rest of the stream, each passed through `digest`; after the
 * last chunk the digest is checked, so a mismatch fails the consumer before it can
 * finish (e.g. before a multipart upload is completed).
 */
export async function* digestedChunks(head: StreamHead, digest: BodyDigest): AsyncGenerator<Buffer> {
  for (const chunk of head.chunks) {
    digest.update(chunk);
    yield chunk;
  }
  try {
    for (;;) {
      const next = await head.rest.next();
      if (next.done) break;
      const chunk = chunkToBuffer(next.value);
      digest.update(chunk);
      yield chunk;
    }
  } finally {
    // Stopped early (the upload failed): release the source stream.
    await head.rest.return?.();
  }
  digest.finish();
}

/** Iterates a stream's chunks as Buffers, rejecting string chunks. */
export async function* streamChunks(body: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of body) yield chunkToBuffer(chunk);
}
