import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import S3rver from "s3rver";
import type { S3StorageOptions } from "../s3-storage.ts";

/** Options for {@link startS3rver}. */
export interface StartS3rverOptions {
  /** A bucket to create before the server starts; default `genq-test`. */
  bucket?: string;
}

/** A running s3rver; see {@link startS3rver}. */
export interface RunningS3rver {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Everything {@link createS3Storage} needs to use this server (path-style, checksums only when required). */
  storageOptions: S3StorageOptions;
  /** Stops the server, dropping open connections, and deletes its directory. */
  close(): Promise<void>;
}

// s3rver's built-in account; it checks the access key exists but not SigV4 signatures.
const S3RVER_ACCESS_KEY_ID = "S3RVER";
const S3RVER_SECRET_ACCESS_KEY = "S3RVER";

/**
 * Starts s3rver, an S3-compatible server written in JavaScript, on a free port of
 * 127.0.0.1 with a fresh temporary directory. For integration tests only.
 *
 * s3rver stores streamed PutObject bodies corrupted unless the client computes checksums
 * only when required, so `storageOptions` sets `checksumWhenRequired`.
 */
export async function startS3rver(options: StartS3rverOptions = {}): Promise<RunningS3rver> {
  const bucket = options.bucket ?? "genq-test";
  const directory = await mkdtemp(path.join(tmpdir(), "genq-s3rver-"));
  try {
    const s3rver = new S3rver({
      directory,
      silent: true,
      configureBuckets: [{ name: bucket, configs: [] }],
    });
    await s3rver.configureBuckets();
    // Our own HTTP server around s3rver's request handler, so close() can drop the SDK's
    // keep-alive connections instead of waiting for them.
    const server = createServer(s3rver.callback());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const endpoint = `http://127.0.0.1:${port}`;
    const region = "us-east-1";
    return {
      endpoint,
      bucket,
      accessKeyId: S3RVER_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
      region,
      storageOptions: {
        bucket,
        region,
        endpoint,
        forcePathStyle: true,
        accessKeyId: S3RVER_ACCESS_KEY_ID,
        secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
        checksumWhenRequired: true,
      },
      async close() {
        const closed = new Promise<void>((resolve, reject) =>
          server.close((error) => (error ? reject(error) : resolve())),
        );
        server.closeAllConnections();
        await closed;
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}
