import { randomUUID } from "node:crypto";
import type { Dirent, Stats } from "node:fs";
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { BodyDigest, streamChunks, toBuffer } from "./body-chunks.ts";
import {
  assertExpiresInSeconds,
  assertSigningSecret,
  type SignedUrlVerdict,
  signLocalGetUrl,
  verifyLocalSignedUrl,
} from "./local-signed-url.ts";
import { assertKeyPrefix, assertObjectKey } from "./object-key.ts";
import type {
  GetObjectResult,
  HeadObjectResult,
  ObjectStorage,
  PutObjectOptions,
  PutObjectResult,
  SignedGetUrlOptions,
} from "./object-storage.ts";
import { validatePutOptions } from "./put-options.ts";
import { ObjectNotFoundError } from "./storage-errors.ts";

/** Options for {@link createLocalStorage}. */
export interface LocalStorageOptions {
  /**
   * Root directory. Object `a/b.png` is the file `objects/a/b.png`, its metadata (content
   * type, sha256, size) the JSON file `metadata/a/b.png`; writes in progress live in `tmp/`.
   */
  directory: string;
  /** HMAC key for signed URLs, at least 32 characters. Changing it invalidates every URL handed out. */
  signingSecret: string;
  /** Where the API serves `GET <publicBaseUrl>/<key>`, e.g. `http://127.0.0.1:3000/v1/assets`. */
  publicBaseUrl: string;
}

/** Options for {@link LocalStorage.verifySignedUrl}. */
export interface VerifySignedUrlOptions {
  /** The `filename` query parameter, when the URL has one (it is part of the signature). */
  filename?: string | undefined;
  /** The current time; defaults to now. */
  now?: Date;
}

/** The local-disk driver, which also checks the URLs it signs. */
export interface LocalStorage extends ObjectStorage {
  readonly driver: "local";
  /**
   * Checks the query parameters of a URL from {@link ObjectStorage.signedGetUrl}, for the
   * API route that serves `<publicBaseUrl>/<key>`: answer 403 unless this returns `"ok"`.
   */
  verifySignedUrl(
    key: string,
    expires: string | number | undefined,
    signature: string | undefined,
    options?: VerifySignedUrlOptions,
  ): SignedUrlVerdict;
  /**
   * Deletes files in `tmp/` last written more than `olderThanMs` ago: writes a killed
   * process never finished (they never became objects). Returns how many went.
   */
  removeStaleTemporaryFiles(olderThanMs: number): Promise<number>;
}

/** What is kept for each object, as JSON in `metadata/<key>`. */
interface StoredMetadata {
  contentType: string;
  sha256: string;
  bytes: number;
}

const DEFAULT_CONTENT_TYPE = "application/octet-stream";
// Abandoned partial writes (a crash mid-put) older than this are removed by ensureReady.
const STALE_TEMP_FILE_MS = 24 * 60 * 60 * 1000;

function isErrorCode(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    codes.includes(String((error as NodeJS.ErrnoException).code))
  );
}

/**
 * Stores objects as plain files under `directory` (the default driver: no services
 * needed). Writes go to a temporary file that is fsynced and renamed into place, so a
 * crash never leaves a partial file under a real key. Signed URLs point at the API,
 * which checks them with {@link LocalStorage.verifySignedUrl} and streams `get(key)`.
 *
 * A key cannot be both an object and a "directory" of other keys (`a` and `a/b`), a
 * limit of file systems that S3 does not have.
 */
export function createLocalStorage(options: LocalStorageOptions): LocalStorage {
  const { signingSecret } = options;
  if (typeof options.directory !== "string" || options.directory.length === 0) {
    throw new TypeError("directory must be a non-empty path");
  }
  assertSigningSecret(signingSecret);
  const publicBaseUrl = parsePublicBaseUrl(options.publicBaseUrl);

  const root = path.resolve(options.directory);
  const objectsRoot = path.join(root, "objects");
  const metadataRoot = path.join(root, "metadata");
  const tempRoot = path.join(root, "tmp");

  const objectPath = (key: string) => path.join(objectsRoot, ...key.split("/"));
  // The same relative path as the object, so both trees have exactly the same shape
  // (any suffix such as ".json" could collide with another valid key).
  const metadataPath = (key: string) => path.join(metadataRoot, ...key.split("/"));

  /** Renames `from` to `to`, recreating `to`'s directory if a concurrent delete pruned it. */
  async function renameIntoPlace(from: string, to: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await mkdir(path.dirname(to), { recursive: true });
      try {
        await rename(from, to);
        return;
      } catch (error) {
        if (!isErrorCode(error, "ENOENT") || attempt >= 3) throw error;
      }
    }
  }

  /** Removes now-empty directories from `directory` up to (not including) `stopAt`. */
  async function pruneEmptyDirectories(directory: string, stopAt: string): Promise<void> {
    let current = directory;
    while (current !== stopAt && current.startsWith(stopAt + path.sep)) {
      try {
        await rmdir(current);
      } catch (error) {
        if (isErrorCode(error, "ENOTEMPTY", "EEXIST", "ENOENT", "EBUSY")) return;
        throw error;
      }
      current = path.dirname(current);
    }
  }

  async function writeTempFile(
    body: Uint8Array | Readable,
    digest: BodyDigest,
  ): Promise<{ tempPath: string; sha256: string }> {
    await mkdir(tempRoot, { recursive: true });
    const tempPath = path.join(tempRoot, randomUUID());
    let handle: FileHandle | undefined;
    try {
      handle = await open(tempPath, "wx");
      if (body instanceof Uint8Array) {
        const buffer = toBuffer(body);
        digest.update(buffer);
        await handle.writeFile(buffer);
      } else {
        for await (const chunk of streamChunks(body)) {
          digest.update(chunk);
          await handle.write(chunk);
        }
      }
      const sha256 = digest.finish();
      // Without fsync, a power loss after the rename can leave an empty file under the key.
      await handle.sync();
      await handle.close();
      handle = undefined;
      return { tempPath, sha256 };
    } catch (error) {
      await handle?.close().catch(() => {});
      await rm(tempPath, { force: true });
      if (!(body instanceof Uint8Array) && !body.readableEnded) body.destroy();
      throw error;
    }
  }

  async function writeMetadata(key: string, metadata: StoredMetadata): Promise<void> {
    const tempPath = path.join(tempRoot, randomUUID());
    try {
      const handle = await open(tempPath, "wx");
      try {
        await handle.writeFile(JSON.stringify(metadata));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await renameIntoPlace(tempPath, metadataPath(key));
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
  }

  async function deleteObject(key: string): Promise<void> {
    const objectFile = objectPath(key);
    const metadataFile = metadataPath(key);
    for (const file of [objectFile, metadataFile]) {
      try {
        await unlink(file);
      } catch (error) {
        // EISDIR/EPERM: the key names a directory of other keys, not an object.
        if (!isErrorCode(error, "ENOENT", "ENOTDIR", "EISDIR", "EPERM")) throw error;
      }
    }
    await pruneEmptyDirectories(path.dirname(objectFile), objectsRoot);
    await pruneEmptyDirectories(path.dirname(metadataFile), metadataRoot);
  }

  async function readMetadata(key: string): Promise<StoredMetadata | undefined> {
    try {
      const parsed: unknown = JSON.parse(await readFile(metadataPath(key), "utf8"));
      if (typeof parsed !== "object" || parsed === null) return undefined;
      const { contentType, sha256, bytes } = parsed as Partial<StoredMetadata>;
      if (typeof contentType !== "string" || typeof sha256 !== "string" || typeof bytes !== "number") {
        return undefined;
      }
      return { contentType, sha256, bytes };
    } catch (error) {
      if (isErrorCode(error, "ENOENT", "ENOTDIR") || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  /**
   * The data file is renamed into place before its metadata, so after a crash between
   * the two the metadata can be stale. It is trusted only when its size matches.
   */
  function describe(
    metadata: StoredMetadata | undefined,
    bytes: number,
  ): { contentType: string; sha256?: string } {
    if (metadata === undefined || metadata.bytes !== bytes) return { contentType: DEFAULT_CONTENT_TYPE };
    return { contentType: metadata.contentType, sha256: metadata.sha256 };
  }

  async function* walk(relativeDirectory: string, prefix: string): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(objectsRoot, ...relativeDirectory.split("/").filter(Boolean)), {
        withFileTypes: true,
      });
    } catch (error) {
      if (isErrorCode(error, "ENOENT", "ENOTDIR")) return;
      throw error;
    }
    for (const entry of entries) {
      const relative = `${relativeDirectory}${entry.name}`;
      if (entry.isDirectory()) {
        const asDirectory = `${relative}/`;
        if (asDirectory.startsWith(prefix) || prefix.startsWith(asDirectory)) {
          yield* walk(asDirectory, prefix);
        }
      } else if (entry.isFile() && relative.startsWith(prefix)) {
        yield relative;
      }
    }
  }

  return {
    driver: "local",

    async removeStaleTemporaryFiles(olderThanMs: number): Promise<number> {
      let entries: Dirent[];
      try {
        entries = await readdir(tempRoot, { withFileTypes: true });
      } catch (error) {
        if (isErrorCode(error, "ENOENT")) return 0;
        throw error;
      }
      const cutoff = Date.now() - olderThanMs;
      let removed = 0;
      for (const entry of entries) {
        if (!entry.isFile()) continue;
        const file = path.join(tempRoot, entry.name);
        const stats = await stat(file).catch(() => undefined);
        if (stats === undefined || stats.mtimeMs >= cutoff) continue;
        await rm(file, { force: true });
        removed += 1;
      }
      return removed;
    },

    async put(
      key: string,
      body: Uint8Array | Readable,
      putOptions: PutObjectOptions,
    ): Promise<PutObjectResult> {
      assertObjectKey(key);
      const expected = validatePutOptions(putOptions);
      const digest = new BodyDigest(key, expected);
      const { tempPath, sha256 } = await writeTempFile(body, digest);
      try {
        await renameIntoPlace(tempPath, objectPath(key));
      } catch (error) {
        await rm(tempPath, { force: true });
        throw error;
      }
      await writeMetadata(key, { contentType: expected.contentType, sha256, bytes: digest.bytes });
      return { key, bytes: digest.bytes, sha256 };
    },

    async get(key: string): Promise<GetObjectResult> {
      assertObjectKey(key);
      let handle: FileHandle;
      try {
        handle = await open(objectPath(key), "r");
      } catch (error) {
        if (isErrorCode(error, "ENOENT", "ENOTDIR")) throw new ObjectNotFoundError(key, { cause: error });
        throw error;
      }
      try {
        // Size from the open file, so a concurrent overwrite cannot make it disagree with the body.
        const stats = await handle.stat();
        if (!stats.isFile()) throw new ObjectNotFoundError(key);
        const metadata = await readMetadata(key);
        return { body: handle.createReadStream(), bytes: stats.size, ...describe(metadata, stats.size) };
      } catch (error) {
        await handle.close();
        throw error;
      }
    },

    async head(key: string): Promise<HeadObjectResult | undefined> {
      assertObjectKey(key);
      let stats: Stats;
      try {
        stats = await stat(objectPath(key));
      } catch (error) {
        if (isErrorCode(error, "ENOENT", "ENOTDIR")) return undefined;
        throw error;
      }
      if (!stats.isFile()) return undefined;
      const metadata = await readMetadata(key);
      return { bytes: stats.size, lastModified: stats.mtime, ...describe(metadata, stats.size) };
    },

    async delete(key: string): Promise<void> {
      assertObjectKey(key);
      await deleteObject(key);
    },

    async deleteMany(keys: Iterable<string>): Promise<void> {
      const all = [...keys];
      for (const key of all) assertObjectKey(key);
      for (const key of all) await deleteObject(key);
    },

    list(prefix: string): AsyncIterable<string> {
      assertKeyPrefix(prefix);
      const directory = prefix.slice(0, prefix.lastIndexOf("/") + 1);
      return walk(directory, prefix);
    },

    async signedGetUrl(key: string, urlOptions: SignedGetUrlOptions): Promise<string> {
      assertObjectKey(key);
      assertExpiresInSeconds(urlOptions.expiresInSeconds);
      const expires = Math.floor(Date.now() / 1000) + urlOptions.expiresInSeconds;
      return signLocalGetUrl({ signingSecret, publicBaseUrl, key, expires, filename: urlOptions.filename });
    },

    verifySignedUrl(key, expires, signature, verifyOptions = {}) {
      return verifyLocalSignedUrl({ signingSecret, key, expires, signature, ...verifyOptions });
    },

    async ensureReady(): Promise<void> {
      await Promise.all(
        [objectsRoot, metadataRoot, tempRoot].map((directory) => mkdir(directory, { recursive: true })),
      );
      await removeStaleTempFiles(tempRoot, Date.now() - STALE_TEMP_FILE_MS);
      // Fail at start-up, not on the first job, when the directory is read-only.
      const probe = path.join(tempRoot, `${randomUUID()}.probe`);
      await (await open(probe, "wx")).close();
      await rm(probe, { force: true });
    },

    async close(): Promise<void> {},
  };
}

async function removeStaleTempFiles(tempRoot: string, olderThanMs: number): Promise<void> {
  for (const name of await readdir(tempRoot)) {
    const file = path.join(tempRoot, name);
    try {
      if ((await stat(file)).mtimeMs < olderThanMs) await rm(file, { force: true });
    } catch (error) {
      if (!isErrorCode(error, "ENOENT")) throw error;
    }
  }
}

function parsePublicBaseUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`publicBaseUrl must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
    throw new TypeError(
      `publicBaseUrl must be an http(s) URL without query or fragment, got ${String(value)}`,
    );
  }
  return url.toString().replace(/\/+$/, "");
}
