import { randomBytes, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { GenqError } from "@genq/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { describeObjectStorageContract } from "./object-storage-contract.ts";
import { createS3Storage, type S3Storage } from "./s3-storage.ts";
import { type RunningS3rver, startS3rver } from "./testing/index.ts";

const MIB = 1024 * 1024;

let s3rver: RunningS3rver;

beforeAll(async () => {
  s3rver = await startS3rver();
});

afterAll(async () => {
  await s3rver?.close();
});

/** Counts the commands of one kind the client sends, e.g. to prove a write really went multipart. */
function countCommands(storage: S3Storage, commandName: string): () => number {
  let count = 0;
  storage.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === commandName) count += 1;
      return next(args);
    },
    { step: "initialize", name: `count${commandName}` },
  );
  return () => count;
}

function countUploadParts(storage: S3Storage): () => number {
  return countCommands(storage, "UploadPartCommand");
}

describeObjectStorageContract("s3 (s3rver, checksums when required)", async () => {
  const storage = createS3Storage({ ...s3rver.storageOptions, partSizeBytes: 5 * MIB });
  return { storage, uploadedParts: countUploadParts(storage) };
});

// Bodies reach PutObject only as buffers (streams are buffered up to the part size or go
// multipart), so the driver also works with the SDK's default checksum behaviour.
describeObjectStorageContract("s3 (s3rver, SDK default checksums)", async () => {
  const storage = createS3Storage({
    ...s3rver.storageOptions,
    checksumWhenRequired: false,
    partSizeBytes: 5 * MIB,
  });
  return { storage, uploadedParts: countUploadParts(storage) };
});

describe("s3 storage", () => {
  it("stores the sha256 as x-amz-meta-sha256 object metadata", async () => {
    const storage = createS3Storage(s3rver.storageOptions);
    try {
      const key = `meta/${randomUUID()}.png`;
      const stored = await storage.put(key, randomBytes(64), { contentType: "image/png" });

      const response = await fetch(`${s3rver.endpoint}/${s3rver.bucket}/${key}`, { method: "HEAD" });

      expect(response.headers.get("x-amz-meta-sha256")).toBe(stored.sha256);
    } finally {
      await storage.close();
    }
  });

  it("aborts the multipart upload when a large stream fails verification", async () => {
    const storage = createS3Storage({ ...s3rver.storageOptions, partSizeBytes: 5 * MIB });
    const aborts = countCommands(storage, "AbortMultipartUploadCommand");
    const completions = countCommands(storage, "CompleteMultipartUploadCommand");
    try {
      const bytes = randomBytes(11 * MIB);
      const chunks = Readable.from([bytes.subarray(0, 6 * MIB), bytes.subarray(6 * MIB)], {
        objectMode: false,
      });

      await expect(
        storage.put(`abort/${randomUUID()}.bin`, chunks, {
          contentType: "application/octet-stream",
          contentLength: bytes.byteLength + 1,
        }),
      ).rejects.toMatchObject({ name: "ObjectIntegrityError", property: "bytes" });

      expect(aborts()).toBe(1);
      expect(completions()).toBe(0);
    } finally {
      await storage.close();
    }
  });

  it("creates a missing bucket in ensureReady when createBucket is set", async () => {
    const bucket = `created-${randomUUID()}`;
    const storage = createS3Storage({ ...s3rver.storageOptions, bucket, createBucket: true });
    try {
      await storage.ensureReady();
      await storage.ensureReady();

      await storage.put("probe.txt", Buffer.from("hello"), { contentType: "text/plain" });
      expect(await buffer((await storage.get("probe.txt")).body)).toEqual(Buffer.from("hello"));
    } finally {
      await storage.close();
    }
  });

  it("fails ensureReady for a missing bucket without createBucket", async () => {
    const storage = createS3Storage({ ...s3rver.storageOptions, bucket: `missing-${randomUUID()}` });
    try {
      const error = await storage.ensureReady().catch((caught: unknown) => caught);

      expect(GenqError.is(error)).toBe(true);
      expect(error).toMatchObject({ code: "service_unavailable" });
      expect(String((error as Error).message)).toContain("does not exist");
    } finally {
      await storage.close();
    }
  });

  it("succeeds in ensureReady when the bucket already exists", async () => {
    const bucket = `existing-${randomUUID()}`;
    const storage = createS3Storage({ ...s3rver.storageOptions, bucket });
    try {
      await storage.client.send(new CreateBucketCommand({ Bucket: bucket }));
      await expect(storage.ensureReady()).resolves.toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it("deletes more keys than fit in one DeleteObjects request", async () => {
    const storage = createS3Storage(s3rver.storageOptions);
    try {
      const prefix = `many/${randomUUID()}/`;
      const keys = Array.from({ length: 1005 }, (_, index) => `${prefix}${index}.txt`);
      await storage.put(keys[0]!, Buffer.from("first"), { contentType: "text/plain" });
      await storage.put(keys[1004]!, Buffer.from("last"), { contentType: "text/plain" });

      await storage.deleteMany(keys);

      expect(await storage.head(keys[0]!)).toBeUndefined();
      expect(await storage.head(keys[1004]!)).toBeUndefined();
    } finally {
      await storage.close();
    }
  });

  it("signs path-style GET URLs that stop working when they expire", async () => {
    const storage = createS3Storage(s3rver.storageOptions);
    try {
      const key = `expiry/${randomUUID()}.png`;
      await storage.put(key, randomBytes(10), { contentType: "image/png" });
      const url = new URL(await storage.signedGetUrl(key, { expiresInSeconds: 60 }));
      // Signed an hour ago with a one-minute lifetime, without waiting for it.
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() - 60 * 60 * 1000);
      const expiredUrl = await storage
        .signedGetUrl(key, { expiresInSeconds: 60 })
        .finally(() => vi.useRealTimers());

      expect(url.searchParams.get("X-Amz-Expires")).toBe("60");
      expect(url.pathname).toBe(`/${s3rver.bucket}/${key}`);
      const expired = await fetch(expiredUrl);
      expect(expired.status).toBe(403);
      expect(await expired.text()).toContain("Request has expired");
    } finally {
      await storage.close();
    }
  });

  it("signs links for the public endpoint when clients reach the store at another address", async () => {
    const internal = new URL(s3rver.storageOptions.endpoint ?? "");
    const publicEndpoint = `http://localhost:${internal.port}`;
    const storage = createS3Storage({ ...s3rver.storageOptions, publicEndpoint });
    try {
      const key = `public/${randomUUID()}.png`;
      const bytes = randomBytes(32);
      await storage.put(key, bytes, { contentType: "image/png" });
      const url = new URL(await storage.signedGetUrl(key, { expiresInSeconds: 60 }));
      expect(url.host).toBe(`localhost:${internal.port}`);
      expect(url.pathname).toBe(`/${s3rver.bucket}/${key}`);
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
      expect(() => createS3Storage({ ...s3rver.storageOptions, publicEndpoint: "minio" })).toThrow(
        /publicEndpoint must be an absolute URL/,
      );
    } finally {
      await storage.close();
    }
  });

  it("refuses invalid options", () => {
    const base = s3rver.storageOptions;
    expect(() => createS3Storage({ ...base, bucket: "" })).toThrow(TypeError);
    expect(() => createS3Storage({ ...base, region: "" })).toThrow(TypeError);
    expect(() => createS3Storage({ ...base, endpoint: "not a url" })).toThrow(TypeError);
    expect(() => createS3Storage({ ...base, secretAccessKey: undefined })).toThrow(TypeError);
    expect(() => createS3Storage({ ...base, partSizeBytes: 4 * MIB })).toThrow(TypeError);
  });
});
