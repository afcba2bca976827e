import { Readable } from "node:stream";
import {
  type BucketLocationConstraint,
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { GenqError } from "@genq/core";
import { BodyDigest, digestBytes, digestedChunks, readStreamHead, toBuffer } from "./body-chunks.ts";
import { contentDisposition } from "./content-disposition.ts";
import { assertExpiresInSeconds } from "./local-signed-url.ts";
import { assertKeyPrefix, assertObjectKey } from "./object-key.ts";
import type {
  GetObjectResult,
  HeadObjectResult,
  ObjectStorage,
  PutObjectOptions,
  PutObjectResult,
  SignedGetUrlOptions,
} from "./object-storage.ts";
import { type ValidatedPutOptions, validatePutOptions } from "./put-options.ts";
import { ObjectNotFoundError } from "./storage-errors.ts";

/** The smallest part S3 accepts (except for the last part): 5 MiB. */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
/** The default part size: 8 MiB. */
export const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
const MAX_PART_SIZE_BYTES = 5 * 1024 * 1024 * 1024;
// DeleteObjects takes at most 1000 keys per request.
const DELETE_BATCH_SIZE = 1000;
// x-amz-meta-sha256; S3 lowercases user metadata names.
const SHA256_METADATA = "sha256";

/** Options for {@link createS3Storage}. */
export interface S3StorageOptions {
  bucket: string;
  /** e.g. `us-east-1`; `auto` for Cloudflare R2. */
  region: string;
  /** For S3-compatible services: `http://127.0.0.1:9000` (MinIO), `https://<account>.r2.cloudflarestorage.com` (R2). */
  endpoint?: string;
  /** Address buckets as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint>` (MinIO, R2, s3rver). */
  forcePathStyle?: boolean;
  /**
   * Where clients reach the store, when it differs from `endpoint` (MinIO in Docker:
   * `endpoint` `http://minio:9000` for genq, `publicEndpoint` `http://localhost:9000`
   * for the links it hands out). Signed links are signed for this host.
   */
  publicEndpoint?: string;
  /**
   * Static credentials; give both or neither. Without them the SDK's default chain
   * (instance role, shared config, ...) is used.
   */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Create the bucket in {@link ObjectStorage.ensureReady} when it does not exist. Default false. */
  createBucket?: boolean;
  /** Bodies larger than this are uploaded in parts of this size; at least 5 MiB, default 8 MiB. */
  partSizeBytes?: number;
  /**
   * Send and validate checksums only where an operation requires them, instead of the
   * SDK's default of always. Needed by s3rver (which otherwise stores streamed uploads
   * corrupted) and by S3-compatible services that reject the newer checksum headers.
   * Default false.
   */
  checksumWhenRequired?: boolean;
}

/** The S3 driver; `client` is exposed for operations the interface does not cover (and for tests). */
export interface S3Storage extends ObjectStorage {
  readonly driver: "s3";
  readonly bucket: string;
  readonly client: S3Client;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return name === "NoSuchKey" || name === "NotFound" || httpStatus(error) === 404;
}

/**
 * Stores objects in an S3 bucket, or any S3-compatible service (MinIO, Cloudflare R2,
 * s3rver). Small bodies are verified against the declared checksum before a single
 * PutObject; larger ones go multipart through `@aws-sdk/lib-storage` and are verified
 * before the upload is completed. The SHA-256 is stored as `x-amz-meta-sha256`.
 *
 * A stream longer than the part size without a declared `sha256` only has its checksum
 * once fully uploaded, so it is then recorded by copying the object onto itself with new
 * metadata (one extra request; CopyObject limits such streams to 5 GiB — declare the
 * checksum for anything bigger).
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  const { bucket, region, endpoint, forcePathStyle, accessKeyId, secretAccessKey } = options;
  const partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
  if (typeof bucket !== "string" || bucket.length === 0)
    throw new TypeError("bucket must be a non-empty string");
  if (typeof region !== "string" || region.length === 0)
    throw new TypeError("region must be a non-empty string");
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    throw new TypeError(`endpoint must be an absolute URL, got ${JSON.stringify(endpoint)}`);
  }
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new TypeError("accessKeyId and secretAccessKey must be given together");
  }
  if (options.publicEndpoint !== undefined && !URL.canParse(options.publicEndpoint)) {
    throw new TypeError(
      `publicEndpoint must be an absolute URL, got ${JSON.stringify(options.publicEndpoint)}`,
    );
  }
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE_BYTES || partSize > MAX_PART_SIZE_BYTES) {
    throw new TypeError(`partSizeBytes must be an integer from ${MIN_PART_SIZE_BYTES} (5 MiB) to 5 GiB`);
  }

  const clientConfig: S3ClientConfig = { region };
  if (endpoint !== undefined) clientConfig.endpoint = endpoint;
  if (forcePathStyle !== undefined) clientConfig.forcePathStyle = forcePathStyle;
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    clientConfig.credentials = { accessKeyId, secretAccessKey };
  }
  if (options.checksumWhenRequired === true) {
    clientConfig.requestChecksumCalculation = "WHEN_REQUIRED";
    clientConfig.responseChecksumValidation = "WHEN_REQUIRED";
  }
  const client = new S3Client(clientConfig);
  // A signature covers the host, so links for another address need a client of their own (it never sends).
  const linkClient =
    options.publicEndpoint === undefined
      ? client
      : new S3Client({ ...clientConfig, endpoint: options.publicEndpoint });

  async function putSingle(
    key: string,
    body: Buffer,
    sha256: string,
    expected: ValidatedPutOptions,
  ): Promise<PutObjectResult> {
    const response = await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.byteLength,
        ContentType: expected.contentType,
        Metadata: { [SHA256_METADATA]: sha256 },
      }),
    );
    return withEtag({ key, bytes: body.byteLength, sha256 }, response.ETag);
  }

  async function putMultipart(
    key: string,
    body: Buffer | Readable,
    expected: ValidatedPutOptions,
    sha256: string | undefined,
  ): Promise<string | undefined> {
    const upload = new Upload({
      client,
      partSize,
      leavePartsOnError: false,
      params: {
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentType: expected.contentType,
        ...(sha256 === undefined ? {} : { Metadata: { [SHA256_METADATA]: sha256 } }),
      },
    });
    const result = await upload.done();
    return result.ETag;
  }

  async function putStream(
    key: string,
    body: Readable,
    expected: ValidatedPutOptions,
  ): Promise<PutObjectResult> {
    const head = await readStreamHead(body, partSize);
    if (head.complete) {
      const buffer = Buffer.concat(head.chunks, head.bytes);
      return putSingle(key, buffer, digestBytes(key, buffer, expected), expected);
    }
    const digest = new BodyDigest(key, expected);
    let integrityError: unknown;
    const chunks = Readable.from(
      (async function* () {
        try {
          yield* digestedChunks(head, digest);
        } catch (error) {
          integrityError = error;
          throw error;
        }
      })(),
      { objectMode: false },
    );
    let etag: string | undefined;
    try {
      etag = await putMultipart(key, chunks, expected, expected.sha256);
    } catch (error) {
      // When verification failed, report that rather than whatever the aborted upload threw.
      throw integrityError ?? error;
    }
    const sha256 = digest.finish();
    if (expected.sha256 === undefined) {
      const copied = await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: `${bucket}/${key}`,
          MetadataDirective: "REPLACE",
          ContentType: expected.contentType,
          Metadata: { [SHA256_METADATA]: sha256 },
        }),
      );
      etag = copied.CopyObjectResult?.ETag ?? etag;
    }
    return withEtag({ key, bytes: digest.bytes, sha256 }, etag);
  }

  async function deleteBatch(keys: string[]): Promise<void> {
    const response = await client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.map((key) => ({ Key: key })), Quiet: true },
      }),
    );
    const failed = response.Errors?.filter((error) => error.Code !== "NoSuchKey") ?? [];
    if (failed.length > 0) {
      const first = failed[0];
      throw new Error(
        `Could not delete ${failed.length} of ${keys.length} objects from bucket "${bucket}"; first: "${first?.Key}" ${first?.Code}: ${first?.Message}`,
      );
    }
  }

  return {
    driver: "s3",
    bucket,
    client,

    async put(
      key: string,
      body: Uint8Array | Readable,
      putOptions: PutObjectOptions,
    ): Promise<PutObjectResult> {
      assertObjectKey(key);
      const expected = validatePutOptions(putOptions);
      if (body instanceof Uint8Array) {
        const buffer = toBuffer(body);
        const sha256 = digestBytes(key, buffer, expected);
        if (buffer.byteLength <= partSize) return putSingle(key, buffer, sha256, expected);
        const etag = await putMultipart(key, buffer, expected, sha256);
        return withEtag({ key, bytes: buffer.byteLength, sha256 }, etag);
      }
      try {
        return await putStream(key, body, expected);
      } finally {
        if (!body.readableEnded) body.destroy();
      }
    },

    async get(key: string): Promise<GetObjectResult> {
      assertObjectKey(key);
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const sha256 = response.Metadata?.[SHA256_METADATA];
        if (!(response.Body instanceof Readable)) {
          throw new TypeError("The S3 client returned a body that is not a Node.js stream");
        }
        return {
          body: response.Body,
          contentType: response.ContentType ?? "application/octet-stream",
          bytes: response.ContentLength ?? 0,
          ...(sha256 === undefined ? {} : { sha256 }),
        };
      } catch (error) {
        if (isNotFound(error)) throw new ObjectNotFoundError(key, { cause: error });
        throw error;
      }
    },

    async head(key: string): Promise<HeadObjectResult | undefined> {
      assertObjectKey(key);
      try {
        const response = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const sha256 = response.Metadata?.[SHA256_METADATA];
        return {
          bytes: response.ContentLength ?? 0,
          contentType: response.ContentType ?? "application/octet-stream",
          lastModified: response.LastModified ?? new Date(0),
          ...(sha256 === undefined ? {} : { sha256 }),
        };
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },

    async delete(key: string): Promise<void> {
      assertObjectKey(key);
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },

    async deleteMany(keys: Iterable<string>): Promise<void> {
      const all = [...new Set(keys)];
      for (const key of all) assertObjectKey(key);
      for (let start = 0; start < all.length; start += DELETE_BATCH_SIZE) {
        await deleteBatch(all.slice(start, start + DELETE_BATCH_SIZE));
      }
    },

    async *list(prefix: string): AsyncIterable<string> {
      assertKeyPrefix(prefix);
      for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) yield object.Key;
        }
      }
    },

    async signedGetUrl(key: string, urlOptions: SignedGetUrlOptions): Promise<string> {
      assertObjectKey(key);
      assertExpiresInSeconds(urlOptions.expiresInSeconds);
      const { filename } = urlOptions;
      const command = new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        ...(filename === undefined ? {} : { ResponseContentDisposition: contentDisposition(filename) }),
      });
      return getSignedUrl(linkClient, command, { expiresIn: urlOptions.expiresInSeconds });
    },

    async ensureReady(): Promise<void> {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
        if (options.createBucket !== true) {
          throw new GenqError(
            "service_unavailable",
            `Bucket "${bucket}" does not exist; create it or enable bucket creation`,
            { cause: error },
          );
        }
      }
      try {
        // Outside us-east-1, AWS wants the region restated; S3-compatible services (an
        // endpoint is set) generally reject or ignore it.
        // The SDK types list the regions it knew when published; newer ones are valid too.
        const locationConstraint =
          endpoint === undefined && region !== "us-east-1" ? (region as BucketLocationConstraint) : undefined;
        await client.send(
          new CreateBucketCommand({
            Bucket: bucket,
            ...(locationConstraint === undefined
              ? {}
              : { CreateBucketConfiguration: { LocationConstraint: locationConstraint } }),
          }),
        );
      } catch (error) {
        // Another process created it first.
        if ((error as { name?: unknown }).name !== "BucketAlreadyOwnedByYou") throw error;
      }
    },

    async close(): Promise<void> {
      client.destroy();
      if (linkClient !== client) linkClient.destroy();
    },
  };
}

function withEtag(result: PutObjectResult, etag: string | undefined): PutObjectResult {
  return etag === undefined ? result : { ...result, etag };
}
