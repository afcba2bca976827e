import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { contentDisposition } from "./content-disposition.ts";
import { createLocalStorage, type LocalStorage } from "./local-storage.ts";
import { describeObjectStorageContract } from "./object-storage-contract.ts";
import { ObjectNotFoundError } from "./storage-errors.ts";

const SECRET = "a-test-signing-secret-of-32-chars!";
const ASSETS_PATH = "/v1/assets/";

/**
 * A stand-in for the API's `/v1/assets/*` route: verify the signature, then stream the
 * object. It shows how the route uses the driver; the API has its own.
 */
async function startAssetServer(
  getStorage: () => LocalStorage,
): Promise<{ baseUrl: string; server: Server }> {
  const server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? "/", "http://localhost");
      const key = url.pathname.slice(ASSETS_PATH.length);
      const filename = url.searchParams.get("filename") ?? undefined;
      const verdict = getStorage().verifySignedUrl(
        key,
        url.searchParams.get("expires") ?? undefined,
        url.searchParams.get("signature") ?? undefined,
        { filename },
      );
      if (verdict !== "ok") {
        response.writeHead(403).end(verdict);
        return;
      }
      try {
        const object = await getStorage().get(key);
        response.writeHead(200, {
          "content-type": object.contentType,
          "content-length": object.bytes,
          ...(filename === undefined ? {} : { "content-disposition": contentDisposition(filename) }),
        });
        await pipeline(object.body, response);
      } catch (error) {
        if (response.headersSent) response.destroy();
        else response.writeHead(error instanceof ObjectNotFoundError ? 404 : 500).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}${ASSETS_PATH.slice(0, -1)}`, server };
}

async function closeServer(server: Server): Promise<void> {
  // close() waits for responses still being written, then drops idle keep-alive sockets.
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describeObjectStorageContract("local", async () => {
  const directory = await mkdtemp(path.join(tmpdir(), "genq-storage-"));
  let storage: LocalStorage | undefined;
  const { baseUrl, server } = await startAssetServer(() => storage!);
  storage = createLocalStorage({ directory, signingSecret: SECRET, publicBaseUrl: baseUrl });
  return {
    storage,
    async dispose() {
      await closeServer(server);
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describe("local storage", () => {
  let directory: string;
  let storage: LocalStorage;

  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), "genq-storage-"));
    storage = createLocalStorage({
      directory,
      signingSecret: SECRET,
      publicBaseUrl: "http://127.0.0.1:3000/v1/assets/",
    });
    await storage.ensureReady();
  });

  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("removes temporary files a killed writer left behind, once they are old, and keeps fresh ones", async () => {
    await storage.put("kept/a.png", new Uint8Array([1, 2, 3]), { contentType: "image/png" });
    const temp = path.join(directory, "tmp");
    await writeFile(path.join(temp, "stale"), "half an image");
    await writeFile(path.join(temp, "fresh"), "a write in progress");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(path.join(temp, "stale"), twoHoursAgo, twoHoursAgo);

    expect(await storage.removeStaleTemporaryFiles(3_600_000)).toBe(1);
    expect((await readdir(temp)).sort()).toEqual(["fresh"]);
    expect(await storage.head("kept/a.png")).toBeDefined();
    expect(await storage.removeStaleTemporaryFiles(3_600_000)).toBe(0);
  });

  it("keeps objects as plain files with a JSON metadata file beside them, and no temporary files", async () => {
    const bytes = randomBytes(100);
    const stored = await storage.put("jobs/j1/0.png", bytes, { contentType: "image/png" });

    expect(await readFile(path.join(directory, "objects", "jobs", "j1", "0.png"))).toEqual(bytes);
    expect(
      JSON.parse(await readFile(path.join(directory, "metadata", "jobs", "j1", "0.png"), "utf8")),
    ).toEqual({
      contentType: "image/png",
      sha256: stored.sha256,
      bytes: 100,
    });
    expect(await readdir(path.join(directory, "tmp"))).toEqual([]);
  });

  it("removes the temporary file when a write fails, leaving nothing under the key", async () => {
    await expect(
      storage.put("jobs/j1/0.png", new Uint8Array(10), { contentType: "image/png", contentLength: 11 }),
    ).rejects.toMatchObject({ name: "ObjectIntegrityError" });

    expect(await storage.head("jobs/j1/0.png")).toBeUndefined();
    expect(await readdir(path.join(directory, "tmp"))).toEqual([]);
  });

  it("removes directories emptied by delete", async () => {
    await storage.put("jobs/j1/0.png", new Uint8Array(1), { contentType: "image/png" });
    await storage.put("jobs/j2/0.png", new Uint8Array(1), { contentType: "image/png" });

    await storage.deleteMany(["jobs/j1/0.png"]);

    expect(await readdir(path.join(directory, "objects", "jobs"))).toEqual(["j2"]);
    expect(await readdir(path.join(directory, "metadata", "jobs"))).toEqual(["j2"]);
  });

  it("does not report a sha256 from metadata that belongs to a different write", async () => {
    await storage.put("a.png", new Uint8Array(10), { contentType: "image/png" });
    // As after a crash between renaming the data and the metadata into place.
    await writeFile(path.join(directory, "objects", "a.png"), new Uint8Array(20));

    expect(await storage.head("a.png")).toMatchObject({ bytes: 20, contentType: "application/octet-stream" });
    expect((await storage.head("a.png"))?.sha256).toBeUndefined();
  });

  it("treats a key that is only a directory of other keys as missing", async () => {
    await storage.put("jobs/j1/0.png", new Uint8Array(1), { contentType: "image/png" });

    expect(await storage.head("jobs/j1")).toBeUndefined();
    await expect(storage.get("jobs/j1")).rejects.toBeInstanceOf(ObjectNotFoundError);
    await storage.delete("jobs/j1");
    expect(await storage.head("jobs/j1/0.png")).toBeDefined();
  });

  it("clears abandoned temporary files older than a day in ensureReady", async () => {
    const stale = path.join(directory, "tmp", "stale");
    const fresh = path.join(directory, "tmp", "fresh");
    await writeFile(stale, "x");
    await writeFile(fresh, "x");
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    await utimes(stale, twoDaysAgo, twoDaysAgo);

    await storage.ensureReady();

    expect(await readdir(path.join(directory, "tmp"))).toEqual(["fresh"]);
  });

  describe("signed URLs", () => {
    const now = new Date("2030-01-01T00:00:00Z");

    async function sign(key: string, options: { filename?: string } = {}) {
      const url = new URL(await storage.signedGetUrl(key, { expiresInSeconds: 300, ...options }));
      return {
        url,
        expires: url.searchParams.get("expires") ?? undefined,
        signature: url.searchParams.get("signature") ?? undefined,
      };
    }

    it("has the documented format", async () => {
      const before = Math.floor(Date.now() / 1000);
      const { url, expires, signature } = await sign("jobs/j1/0.png");

      expect(`${url.origin}${url.pathname}`).toBe("http://127.0.0.1:3000/v1/assets/jobs/j1/0.png");
      expect(Number(expires) - before).toBeGreaterThanOrEqual(300);
      expect(Number(expires) - before).toBeLessThanOrEqual(301);
      const { createHmac } = await import("node:crypto");
      expect(signature).toBe(
        createHmac("sha256", SECRET).update(`GET\njobs/j1/0.png\n${expires}`).digest("base64url"),
      );
    });

    it("accepts a valid URL", async () => {
      const { expires, signature } = await sign("jobs/j1/0.png");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature)).toBe("ok");
      expect(storage.verifySignedUrl("jobs/j1/0.png", Number(expires), signature)).toBe("ok");
    });

    it("rejects a tampered signature as invalid", async () => {
      const { expires, signature } = await sign("jobs/j1/0.png");
      const last = signature!.at(-1) === "A" ? "B" : "A";
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, `${signature!.slice(0, -1)}${last}`)).toBe(
        "invalid",
      );
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, `${signature}x`)).toBe("invalid");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, "")).toBe("invalid");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, undefined)).toBe("invalid");
    });

    it("rejects the signature of another key as invalid", async () => {
      const { expires, signature } = await sign("jobs/j1/0.png");
      expect(storage.verifySignedUrl("jobs/j1/1.png", expires, signature)).toBe("invalid");
      expect(storage.verifySignedUrl("../jobs/j1/0.png", expires, signature)).toBe("invalid");
    });

    it("rejects a moved expiry as invalid", async () => {
      const { expires, signature } = await sign("jobs/j1/0.png");
      expect(storage.verifySignedUrl("jobs/j1/0.png", String(Number(expires) + 3600), signature)).toBe(
        "invalid",
      );
      expect(storage.verifySignedUrl("jobs/j1/0.png", `${expires}.0`, signature)).toBe("invalid");
      expect(storage.verifySignedUrl("jobs/j1/0.png", undefined, signature)).toBe("invalid");
    });

    it("reports an expired URL as expired", async () => {
      const { expires, signature } = await sign("jobs/j1/0.png");
      const atExpiry = new Date(Number(expires) * 1000);
      const justBefore = new Date(Number(expires) * 1000 - 1);

      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature, { now: justBefore })).toBe("ok");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature, { now: atExpiry })).toBe("expired");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature, { now })).toBe("expired");
    });

    it("rejects a URL signed with another secret as invalid", async () => {
      const other = createLocalStorage({
        directory,
        signingSecret: "another-secret-that-is-long-enough!!",
        publicBaseUrl: "http://127.0.0.1:3000/v1/assets",
      });
      const url = new URL(await other.signedGetUrl("jobs/j1/0.png", { expiresInSeconds: 60 }));
      expect(
        storage.verifySignedUrl(
          "jobs/j1/0.png",
          url.searchParams.get("expires") ?? undefined,
          url.searchParams.get("signature") ?? undefined,
        ),
      ).toBe("invalid");
    });

    it("covers the filename with the signature", async () => {
      const { url, expires, signature } = await sign("jobs/j1/0.png", { filename: "cat.png" });

      expect(url.searchParams.get("filename")).toBe("cat.png");
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature, { filename: "cat.png" })).toBe(
        "ok",
      );
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature, { filename: "cat.exe" })).toBe(
        "invalid",
      );
      expect(storage.verifySignedUrl("jobs/j1/0.png", expires, signature)).toBe("invalid");
    });
  });

  it("refuses invalid options", () => {
    const valid = { directory, signingSecret: SECRET, publicBaseUrl: "http://127.0.0.1:3000/v1/assets" };
    expect(() => createLocalStorage({ ...valid, signingSecret: "too-short" })).toThrow(TypeError);
    expect(() => createLocalStorage({ ...valid, directory: "" })).toThrow(TypeError);
    expect(() => createLocalStorage({ ...valid, publicBaseUrl: "/v1/assets" })).toThrow(TypeError);
    expect(() => createLocalStorage({ ...valid, publicBaseUrl: "ftp://host/assets" })).toThrow(TypeError);
    expect(() => createLocalStorage({ ...valid, publicBaseUrl: "http://host/assets?x=1" })).toThrow(
      TypeError,
    );
  });
});
