import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { GenqError } from "@genq/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ObjectStorage } from "./object-storage.ts";
import { ObjectIntegrityError, ObjectNotFoundError } from "./storage-errors.ts";

/** A driver instance prepared for {@link describeObjectStorageContract}. */
export interface StorageUnderTest {
  /** Configured with a 5 MiB part size where the driver has one. */
  storage: ObjectStorage;
  /** How many multipart parts were uploaded so far, for drivers that upload in parts. */
  uploadedParts?: () => number;
  /** Releases what `create` set up beyond `storage` (which the suite closes itself). */
  dispose?: () => Promise<void>;
}

const MIB = 1024 * 1024;

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A stream of unknown length yielding `bytes` in `chunkSize` pieces, as an HTTP upload would. */
function streamOf(bytes: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
        yield bytes.subarray(offset, offset + chunkSize);
      }
    })(),
    { objectMode: false },
  );
}

/** A stream that yields `bytes` and then fails, like a client that disconnects mid-upload. */
function failingStreamOf(bytes: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield bytes;
      throw new Error("client went away");
    })(),
    { objectMode: false },
  );
}

const BAD_KEYS = [
  "",
  "/leading",
  "../escape",
  "a/../b",
  "a/..",
  "trailing/",
  "a//b",
  "white space",
  "ä.png",
  "a\nb",
];

/**
 * The behaviour every {@link ObjectStorage} driver must have, run against each driver
 * by its own test file.
 */
export function describeObjectStorageContract(driver: string, create: () => Promise<StorageUnderTest>): void {
  describe(`${driver} storage (shared contract)`, () => {
    let subject: StorageUnderTest;
    let storage: ObjectStorage;
    let prefix: string;

    beforeEach(async () => {
      subject = await create();
      storage = subject.storage;
      await storage.ensureReady();
      // Each test writes under its own prefix, so tests never see each other's objects.
      prefix = `contract/${randomUUID()}/`;
    });

    afterEach(async () => {
      await storage.close();
      await subject.dispose?.();
    });

    it("reads back the bytes, content type and sha256 it was given", async () => {
      const bytes = randomBytes(4096);
      const key = `${prefix}image-0.png`;

      const stored = await storage.put(key, bytes, { contentType: "image/png" });
      expect(stored).toMatchObject({ key, bytes: 4096, sha256: sha256Hex(bytes) });

      const object = await storage.get(key);
      expect(await buffer(object.body)).toEqual(bytes);
      expect(object).toMatchObject({ contentType: "image/png", bytes: 4096, sha256: sha256Hex(bytes) });
    });

    it("accepts a Uint8Array that is a view into a larger buffer", async () => {
      const backing = randomBytes(1000);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 500);
      const key = `${prefix}view.bin`;

      const stored = await storage.put(key, view, { contentType: "application/octet-stream" });

      expect(stored.sha256).toBe(sha256Hex(view));
      expect(await buffer((await storage.get(key)).body)).toEqual(Buffer.from(view));
    });

    it("stores an empty object", async () => {
      const key = `${prefix}empty.txt`;
      const stored = await storage.put(key, new Uint8Array(0), { contentType: "text/plain" });
      expect(stored).toMatchObject({ bytes: 0, sha256: sha256Hex(new Uint8Array(0)) });
      expect(await storage.head(key)).toMatchObject({ bytes: 0, sha256: stored.sha256 });
    });

    it("describes an object with head, and answers undefined for a missing one", async () => {
      const bytes = randomBytes(1234);
      const key = `${prefix}head.webp`;
      const before = Date.now();
      await storage.put(key, bytes, { contentType: "image/webp" });

      const head = await storage.head(key);

      expect(head).toMatchObject({ bytes: 1234, contentType: "image/webp", sha256: sha256Hex(bytes) });
      // Second resolution on S3's Last-Modified.
      expect(head?.lastModified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(await storage.head(`${prefix}missing.png`)).toBeUndefined();
    });

    it("verifies a declared sha256 and content length, and stores nothing on a mismatch", async () => {
      const bytes = randomBytes(2048);
      const key = `${prefix}declared.bin`;

      const stored = await storage.put(key, bytes, {
        contentType: "application/octet-stream",
        sha256: sha256Hex(bytes).toUpperCase(),
        contentLength: 2048,
      });
      expect(stored.sha256).toBe(sha256Hex(bytes));

      const wrongKey = `${prefix}wrong.bin`;
      const wrongSha = sha256Hex(randomBytes(8));
      const error = await storage
        .put(wrongKey, bytes, { contentType: "application/octet-stream", sha256: wrongSha })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ObjectIntegrityError);
      expect(error).toMatchObject({ code: "invalid_request", property: "sha256", expected: wrongSha });
      await expect(
        storage.put(wrongKey, bytes, { contentType: "application/octet-stream", contentLength: 2047 }),
      ).rejects.toMatchObject({ name: "ObjectIntegrityError", property: "bytes" });
      expect(await storage.head(wrongKey)).toBeUndefined();
    });

    it("replaces an object written again under the same key", async () => {
      const key = `${prefix}retried.png`;
      await storage.put(key, randomBytes(3000), { contentType: "image/png" });
      const second = randomBytes(1000);

      await storage.put(key, second, { contentType: "image/jpeg" });

      const object = await storage.get(key);
      expect(await buffer(object.body)).toEqual(second);
      expect(object).toMatchObject({ bytes: 1000, contentType: "image/jpeg", sha256: sha256Hex(second) });
    });

    it("writes a stream of unknown length", async () => {
      const bytes = randomBytes(300 * 1024);
      const key = `${prefix}streamed.png`;

      const stored = await storage.put(key, streamOf(bytes), { contentType: "image/png" });

      expect(stored).toMatchObject({ bytes: bytes.byteLength, sha256: sha256Hex(bytes) });
      const object = await storage.get(key);
      expect(await buffer(object.body)).toEqual(bytes);
      expect(object.sha256).toBe(sha256Hex(bytes));
    });

    it("refuses a stream that yields strings, whose bytes are ambiguous", async () => {
      const key = `${prefix}text.txt`;
      await expect(
        storage.put(key, Readable.from(["some text"]), { contentType: "text/plain" }),
      ).rejects.toThrow(TypeError);
      expect(await storage.head(key)).toBeUndefined();
    });

    it("keeps the previous object when a streamed upload fails midway", async () => {
      const key = `${prefix}interrupted.png`;
      const original = randomBytes(2000);
      await storage.put(key, original, { contentType: "image/png" });

      await expect(
        storage.put(key, failingStreamOf(randomBytes(100 * 1024)), { contentType: "image/png" }),
      ).rejects.toThrow("client went away");

      const object = await storage.get(key);
      expect(await buffer(object.body)).toEqual(original);
      expect(object.sha256).toBe(sha256Hex(original));
    });

    it("writes a 20 MiB object in parts and reads it back byte-identical", async () => {
      const bytes = randomBytes(20 * MIB);
      const key = `${prefix}large.bin`;
      const partsBefore = subject.uploadedParts?.() ?? 0;

      const stored = await storage.put(key, bytes, { contentType: "application/octet-stream" });

      expect(stored).toMatchObject({ bytes: 20 * MIB, sha256: sha256Hex(bytes) });
      if (subject.uploadedParts) {
        // 20 MiB in 5 MiB parts.
        expect(subject.uploadedParts() - partsBefore).toBe(4);
      }
      const object = await storage.get(key);
      const readBack = await buffer(object.body);
      expect(readBack.byteLength).toBe(bytes.byteLength);
      expect(readBack.equals(bytes)).toBe(true);
      expect(object.sha256).toBe(sha256Hex(bytes));
    }, 60_000);

    it("writes a large stream of unknown length in parts and records its sha256", async () => {
      const bytes = randomBytes(12 * MIB + 123);
      const key = `${prefix}large-stream.bin`;
      const partsBefore = subject.uploadedParts?.() ?? 0;

      const stored = await storage.put(key, streamOf(bytes), { contentType: "video/mp4" });

      expect(stored).toMatchObject({ bytes: bytes.byteLength, sha256: sha256Hex(bytes) });
      if (subject.uploadedParts) expect(subject.uploadedParts() - partsBefore).toBe(3);
      expect(await storage.head(key)).toMatchObject({
        bytes: bytes.byteLength,
        contentType: "video/mp4",
        sha256: sha256Hex(bytes),
      });
      expect((await buffer((await storage.get(key)).body)).equals(bytes)).toBe(true);
    }, 60_000);

    it("writes a large stream with a declared sha256 in parts", async () => {
      const bytes = randomBytes(11 * MIB);
      const key = `${prefix}large-declared.bin`;

      const stored = await storage.put(key, streamOf(bytes), {
        contentType: "application/octet-stream",
        sha256: sha256Hex(bytes),
      });

      expect(stored).toMatchObject({ bytes: bytes.byteLength, sha256: sha256Hex(bytes) });
      expect(await storage.head(key)).toMatchObject({ bytes: bytes.byteLength, sha256: sha256Hex(bytes) });
      expect((await buffer((await storage.get(key)).body)).equals(bytes)).toBe(true);
    }, 60_000);

    it("refuses a large stream whose declared sha256 does not match, leaving nothing behind", async () => {
      const bytes = randomBytes(11 * MIB);
      const key = `${prefix}large-wrong.bin`;

      await expect(
        storage.put(key, streamOf(bytes), {
          contentType: "application/octet-stream",
          sha256: sha256Hex(randomBytes(8)),
        }),
      ).rejects.toBeInstanceOf(ObjectIntegrityError);

      expect(await storage.head(key)).toBeUndefined();
    }, 60_000);

    it("throws ObjectNotFoundError with code not_found for a missing object", async () => {
      const error = await storage.get(`${prefix}nothing-here.png`).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(ObjectNotFoundError);
      expect(GenqError.is(error)).toBe(true);
      expect(error).toMatchObject({ code: "not_found", key: `${prefix}nothing-here.png`, retryable: false });
    });

    it("deletes idempotently", async () => {
      const key = `${prefix}deleted.png`;
      await storage.put(key, randomBytes(10), { contentType: "image/png" });

      await storage.delete(key);
      await storage.delete(key);

      expect(await storage.head(key)).toBeUndefined();
      await expect(storage.get(key)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it("lists keys by prefix", async () => {
      const keys = [
        `${prefix}job-1/0.png`,
        `${prefix}job-1/1.png`,
        `${prefix}job-10/0.png`,
        `${prefix}job-2/0.png`,
      ];
      for (const key of keys) await storage.put(key, randomBytes(8), { contentType: "image/png" });

      const list = async (listPrefix: string) => {
        const found: string[] = [];
        for await (const key of storage.list(listPrefix)) found.push(key);
        return found.sort();
      };

      expect(await list(`${prefix}job-1/`)).toEqual([`${prefix}job-1/0.png`, `${prefix}job-1/1.png`]);
      expect(await list(`${prefix}job-1`)).toEqual(keys.slice(0, 3));
      expect(await list(prefix)).toEqual(keys);
      expect(await list(`${prefix}job-3`)).toEqual([]);
    });

    it("deletes many objects at once, ignoring missing ones", async () => {
      const keys = [`${prefix}a/0.png`, `${prefix}a/1.png`, `${prefix}b/0.png`];
      for (const key of keys) await storage.put(key, randomBytes(8), { contentType: "image/png" });

      await storage.deleteMany([keys[0]!, keys[1]!, `${prefix}a/never-existed.png`]);
      await storage.deleteMany([]);

      const left: string[] = [];
      for await (const key of storage.list(prefix)) left.push(key);
      expect(left).toEqual([`${prefix}b/0.png`]);
    });

    it("hands out a signed URL that fetch can download", async () => {
      const bytes = randomBytes(5000);
      const key = `${prefix}signed.png`;
      await storage.put(key, bytes, { contentType: "image/png" });

      const url = await storage.signedGetUrl(key, { expiresInSeconds: 300 });
      const response = await fetch(url);

      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("image/png");
      expect(Buffer.from(await response.arrayBuffer())).toEqual(bytes);
    });

    it("names the download in a signed URL with a filename", async () => {
      const key = `${prefix}named.png`;
      await storage.put(key, randomBytes(100), { contentType: "image/png" });

      const url = await storage.signedGetUrl(key, { expiresInSeconds: 60, filename: "sunset über.png" });
      const response = await fetch(url);

      expect(response.status).toBe(200);
      expect(response.headers.get("content-disposition")).toBe(
        `attachment; filename="sunset _ber.png"; filename*=UTF-8''sunset%20%C3%BCber.png`,
      );
      await response.arrayBuffer();
    });

    it("refuses bad keys with a TypeError before any I/O", async () => {
      for (const key of BAD_KEYS) {
        await expect(storage.put(key, new Uint8Array(1), { contentType: "image/png" }), key).rejects.toThrow(
          TypeError,
        );
        await expect(storage.get(key), key).rejects.toThrow(TypeError);
        await expect(storage.head(key), key).rejects.toThrow(TypeError);
        await expect(storage.delete(key), key).rejects.toThrow(TypeError);
        await expect(storage.signedGetUrl(key, { expiresInSeconds: 60 }), key).rejects.toThrow(TypeError);
      }
      await expect(storage.deleteMany([`${prefix}fine.png`, "../bad"])).rejects.toThrow(TypeError);
      await expect(async () => {
        for await (const _key of storage.list("../")) {
          // never reached
        }
      }).rejects.toThrow(TypeError);
    });

    it("refuses malformed put and signed URL options with a TypeError", async () => {
      const key = `${prefix}options.png`;
      const body = new Uint8Array(1);
      await expect(storage.put(key, body, { contentType: "" })).rejects.toThrow(TypeError);
      await expect(storage.put(key, body, { contentType: "image/png\r\nx: y" })).rejects.toThrow(TypeError);
      await expect(storage.put(key, body, { contentType: "image/png", sha256: "abc" })).rejects.toThrow(
        TypeError,
      );
      await expect(storage.put(key, body, { contentType: "image/png", contentLength: -1 })).rejects.toThrow(
        TypeError,
      );
      await expect(storage.signedGetUrl(key, { expiresInSeconds: 0 })).rejects.toThrow(TypeError);
      await expect(storage.signedGetUrl(key, { expiresInSeconds: 604_801 })).rejects.toThrow(TypeError);
      await expect(storage.signedGetUrl(key, { expiresInSeconds: 60, filename: "a/b.png" })).rejects.toThrow(
        TypeError,
      );
      expect(await storage.head(key)).toBeUndefined();
    });
  });
}
