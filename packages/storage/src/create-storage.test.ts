import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createStorage, type StorageConfig } from "./create-storage.ts";

describe("createStorage", () => {
  let directory: string;

  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), "genq-storage-"));
  });

  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("creates the local driver, whose result can verify signed URLs", async () => {
    const storage = createStorage({
      driver: "local",
      directory,
      signingSecret: "0123456789abcdef0123456789abcdef",
      publicBaseUrl: "http://127.0.0.1:3000/v1/assets",
    });

    expect(storage.driver).toBe("local");
    const url = new URL(await storage.signedGetUrl("a.png", { expiresInSeconds: 60 }));
    expect(
      storage.verifySignedUrl(
        "a.png",
        url.searchParams.get("expires") ?? undefined,
        url.searchParams.get("signature") ?? undefined,
      ),
    ).toBe("ok");
  });

  it("creates the S3 driver without contacting the service", async () => {
    const storage = createStorage({
      driver: "s3",
      bucket: "assets",
      region: "auto",
      endpoint: "https://example-account.r2.cloudflarestorage.com",
      forcePathStyle: true,
      accessKeyId: "key",
      secretAccessKey: "secret",
    });

    expect(storage.driver).toBe("s3");
    expect(storage.bucket).toBe("assets");
    const url = new URL(await storage.signedGetUrl("jobs/1/0.png", { expiresInSeconds: 900 }));
    expect(`${url.origin}${url.pathname}`).toBe(
      "https://example-account.r2.cloudflarestorage.com/assets/jobs/1/0.png",
    );
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^key\/\d{8}\/auto\/s3\/aws4_request$/);
    await storage.close();
  });

  it("refuses an unknown driver with a TypeError", () => {
    expect(() => createStorage({ driver: "ftp" } as unknown as StorageConfig)).toThrow(TypeError);
  });
});
