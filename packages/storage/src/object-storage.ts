import type { Readable } from "node:stream";

/** Options for {@link ObjectStorage.put}. */
export interface PutObjectOptions {
  /** The MIME type stored with the object and returned by `get`/`head` (e.g. `image/png`). */
  contentType: string;
  /**
   * The lowercase hex SHA-256 the caller expects the body to have. When given, the
   * written bytes are verified against it and the write fails with
   * {@link ObjectIntegrityError} on a mismatch; when omitted it is computed while writing.
   */
  sha256?: string;
  /**
   * The body's length in bytes, when known. Verified like `sha256`; for a stream it also
   * lets a small body skip multipart.
   */
  contentLength?: number;
}

/** What {@link ObjectStorage.put} stored. */
export interface PutObjectResult {
  key: string;
  /** Bytes written. */
  bytes: number;
  /** Lowercase hex SHA-256 of the bytes written. */
  sha256: string;
  /** The entity tag the backend assigned, where it has one (S3). */
  etag?: string;
}

/** An object read by {@link ObjectStorage.get}. The caller must consume or destroy `body`. */
export interface GetObjectResult {
  body: Readable;
  contentType: string;
  bytes: number;
  /** The SHA-256 recorded at `put`, when the object was written through this package. */
  sha256?: string;
}

/** An object's metadata, from {@link ObjectStorage.head}. */
export interface HeadObjectResult {
  bytes: number;
  contentType: string;
  sha256?: string;
  lastModified: Date;
}

/** Options for {@link ObjectStorage.signedGetUrl}. */
export interface SignedGetUrlOptions {
  /** Lifetime of the URL, 1 to 604800 seconds (7 days, the SigV4 maximum). */
  expiresInSeconds: number;
  /**
   * A download name: the response then carries `Content-Disposition` with it. Printable
   * characters only (no control characters); non-ASCII names are sent RFC 5987-encoded.
   */
  filename?: string;
  /** `attachment` (the default) asks the browser to download; `inline` to display. */
  disposition?: "attachment" | "inline";
}

/**
 * Where generated assets and uploads live. Bytes go here, never through Redis or
 * PostgreSQL; callers keep the key, size and checksum and hand out signed URLs.
 *
 * Keys are validated by every method (see {@link assertObjectKey}): a bad key throws a
 * `TypeError` before any I/O.
 */
export interface ObjectStorage {
  /** `"s3"` or `"local"`, for logs and for wiring the local asset route. */
  readonly driver: "s3" | "local";
  /**
   * Writes `body` under `key`, replacing any object there; a reader never sees a partial
   * object. Bodies longer than the part size, or streams of unknown length that turn out
   * longer, are written in parts.
   */
  put(key: string, body: Uint8Array | Readable, options: PutObjectOptions): Promise<PutObjectResult>;
  /** Opens an object for reading; throws {@link ObjectNotFoundError} when there is none. */
  get(key: string): Promise<GetObjectResult>;
  /** An object's metadata, or `undefined` when there is none. */
  head(key: string): Promise<HeadObjectResult | undefined>;
  /** Deletes an object; deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Deletes many objects (in batches where the backend allows); missing ones are ignored. */
  deleteMany(keys: Iterable<string>): Promise<void>;
  /**
   * Every key starting with `prefix` (`""` for all), for retention cleanup. Order is not
   * specified and may differ between drivers.
   */
  list(prefix: string): AsyncIterable<string>;
  /** A URL that lets anyone holding it GET the object until it expires. */
  signedGetUrl(key: string, options: SignedGetUrlOptions): Promise<string>;
  /** Checks the backend is reachable and writable (creating the bucket or directory if allowed). */
  ensureReady(): Promise<void>;
  /** Releases sockets and other resources. */
  close(): Promise<void>;
}
