import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { AssetRepository } from "@genq/db";
import { imageDimensions } from "@genq/providers";
import {
  type FakeGeminiServer,
  type FakeOpenAIServer,
  fakeGeminiImagePng,
  fakeImagePng,
  startFakeGeminiServer,
  startFakeOpenAIServer,
} from "@genq/providers/testing";
import { sweepExpiredAssets } from "@genq/runner";
import type { ObjectStorage } from "@genq/storage";
import { type RunningS3rver, startS3rver } from "@genq/storage/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { FAST_STALL, Harness, waitUntil } from "./harness.ts";

/** One image as `GET /v1/jobs/:id` shows it. */
interface ImageView {
  index: number;
  url: string | null;
  urlExpiresAt: string | null;
  contentType: string;
  bytes: number;
  sha256: string;
  width?: number;
  height?: number;
  revisedPrompt?: string;
}

function imagesOf(job: Record<string, unknown>): ImageView[] {
  return (job.result as { images: ImageView[] }).images;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The path and query of a local signed URL, for `app.inject`. */
function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

async function readObject(storage: ObjectStorage, key: string): Promise<Buffer> {
  const object = await storage.get(key);
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listKeys(storage: ObjectStorage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of storage.list(prefix)) keys.push(key);
  return keys.sort();
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("image jobs on the local storage driver", () => {
  let harness: Harness;
  let apiKey: string;
  let assets: AssetRepository;

  beforeAll(async () => {
    harness = await new Harness().start();
    ({ apiKey } = await harness.createUser());
    assets = new AssetRepository({ db: harness.db });
  });
  afterAll(async () => {
    await harness.close();
  });

  async function completedImageJob(prompt: string, n = 2) {
    const submitted = await harness.submit(apiKey, {
      type: "image",
      input: { prompt, n, size: "512x512" },
    });
    expect(submitted.statusCode).toBe(202);
    const job = await harness.waitForJob(apiKey, submitted.json().id);
    expect(job).toMatchObject({ status: "completed", type: "image", provider: "mock" });
    return job;
  }

  it("stores n PNGs and serves each through its signed link with the asset's checksum and size", async () => {
    const job = await completedImageJob("a lighthouse at dusk");
    const images = imagesOf(job);
    const rows = await assets.listForJob(String(job.id));
    expect(images).toHaveLength(2);
    expect(rows).toHaveLength(2);
    expect(JSON.stringify(job.result)).not.toMatch(/base64|b64_json/);

    for (const image of images) {
      const row = rows[image.index];
      expect(row?.key).toBe(`images/${job.id}/${image.index}.png`);
      expect(image).toMatchObject({
        contentType: "image/png",
        width: 512,
        height: 512,
        sha256: row?.sha256,
        bytes: row?.bytes,
      });
      expect(image.url).toMatch(/^http:\/\/localhost\/v1\/assets\/images\//);
      // The advertised expiry is never later than the one the link is checked against.
      const urlExpiresAt = Date.parse(image.urlExpiresAt ?? "");
      expect(urlExpiresAt).toBeGreaterThan(Date.now());
      expect(urlExpiresAt).toBeLessThanOrEqual(
        Number(new URL(image.url ?? "").searchParams.get("expires")) * 1_000,
      );

      const response = await harness.app.inject({ method: "GET", url: pathOf(image.url ?? "") });
      expect(response.statusCode).toBe(200);
      expect(response.headers["content-type"]).toBe("image/png");
      expect(response.headers["content-disposition"]).toContain(`image-${image.index}.png`);
      const bytes = response.rawPayload;
      expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(sha256(bytes)).toBe(row?.sha256);
      expect(sha256(bytes)).toBe(image.sha256);
      expect(bytes.byteLength).toBe(image.bytes);
      expect(imageDimensions(bytes)).toEqual({ width: 512, height: 512, mediaType: "image/png" });
    }
    // The index makes the images of one job differ.
    expect(images[0]?.sha256).not.toBe(images[1]?.sha256);
  });

  it("answers 403 to a tampered signature, another object's signature and an expired link", async () => {
    const job = await completedImageJob("signed links only");
    const [first, second] = imagesOf(job);
    const firstUrl = new URL(first?.url ?? "");
    const secondUrl = new URL(second?.url ?? "");

    const signature = firstUrl.searchParams.get("signature") ?? "";
    const tampered = new URL(firstUrl);
    tampered.searchParams.set("signature", `${signature[0] === "A" ? "B" : "A"}${signature.slice(1)}`);
    const otherObject = `${firstUrl.pathname}${secondUrl.search}`;
    const laterExpiry = new URL(firstUrl);
    laterExpiry.searchParams.set("expires", String(Number(firstUrl.searchParams.get("expires")) + 3_600));

    for (const url of [pathOf(tampered.toString()), otherObject, pathOf(laterExpiry.toString())]) {
      const response = await harness.app.inject({ method: "GET", url });
      expect(response.statusCode, url).toBe(403);
      expect(response.json().error).toMatchObject({ code: "forbidden" });
      expect(response.json().error.message).toMatch(/not valid/);
    }
    const unsigned = await harness.app.inject({ method: "GET", url: firstUrl.pathname });
    expect(unsigned.statusCode).toBe(403);

    // A genuine link past its expiry: polled, since its second may end at any moment.
    const key = `images/${job.id}/0.png`;
    const shortLived = pathOf(await harness.storage.signedGetUrl(key, { expiresInSeconds: 1 }));
    let expired: Awaited<ReturnType<typeof harness.app.inject>> | undefined;
    await waitUntil(async () => {
      expired = await harness.app.inject({ method: "GET", url: shortLived });
      if (expired.statusCode === 200) return false;
      return true;
    }, 5_000);
    expect(expired?.statusCode).toBe(403);
    expect(expired?.json().error).toMatchObject({ code: "forbidden" });
    expect(expired?.json().error.message).toMatch(/expired/);
  });

  it("deletes expired assets' objects and rows in the retention sweep; the job then shows url null", async () => {
    const job = await completedImageJob("kept for a while");
    const jobId = String(job.id);
    const [kept, doomed] = await assets.listForJob(jobId);
    expect(kept?.expiresAt?.getTime()).toBeGreaterThan(Date.now());
    await harness.db
      .$executeRaw`UPDATE assets SET expires_at = now() - interval '1 minute' WHERE id = ${doomed?.id}::uuid`;

    const { deleted } = await sweepExpiredAssets({ storage: harness.storage, assets });
    expect(deleted).toBe(1);
    expect(await harness.storage.head(doomed?.key ?? "")).toBeUndefined();
    expect((await assets.listForJob(jobId)).map((row) => row.index)).toEqual([0]);
    expect(await harness.storage.head(kept?.key ?? "")).toMatchObject({ sha256: kept?.sha256 });

    const images = imagesOf(await harness.getJob(apiKey, jobId));
    expect(images[0]?.url).toEqual(expect.any(String));
    expect(images[1]).toMatchObject({ index: 1, url: null, urlExpiresAt: null, sha256: doomed?.sha256 });
    // The old link now finds nothing.
    const response = await harness.app.inject({ method: "GET", url: pathOf(imagesOf(job)[1]?.url ?? "") });
    expect(response.statusCode).toBe(404);
  });

  it.each([
    ["input.n", { prompt: "too many", n: 11 }],
    ["input.size", { prompt: "a size", size: "big" }],
    ["input.prompt", { n: 1 }],
  ])("refuses an image job with an invalid %s with 400 naming the field", async (field, input) => {
    const response = await harness.submit(apiKey, { type: "image", input });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe("invalid_request");
    expect(error.details.field).toBe(field);
    expect(error.message).toContain(field);
  });
});

describe("asset retention as a worker job scheduler", () => {
  let harness: Harness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it("deletes an expired asset's object and row without anyone calling the sweep", async () => {
    harness = await new Harness({ workerEnv: { GENQ_MAINTENANCE_INTERVAL_MS: "1000" } }).start();
    const { apiKey } = await harness.createUser();
    const submitted = await harness.submit(apiKey, {
      type: "image",
      input: { prompt: "swept by the scheduler", n: 2, size: "256x256" },
    });
    const job = await harness.waitForJob(apiKey, submitted.json().id);
    expect(job.status).toBe("completed");
    const assets = new AssetRepository({ db: harness.db });
    const [kept, doomed] = await assets.listForJob(String(job.id));
    await harness.db
      .$executeRaw`UPDATE assets SET expires_at = now() - interval '1 minute' WHERE id = ${doomed?.id}::uuid`;

    const current = harness;
    await waitUntil(async () => (await assets.listForJob(String(job.id))).length === 1, 15_000);
    expect(await current.storage.head(doomed?.key ?? "")).toBeUndefined();
    expect(await current.storage.head(kept?.key ?? "")).toBeDefined();
  });
});

describe("image jobs on the S3 driver (s3rver)", () => {
  let s3: RunningS3rver;
  let harness: Harness;

  beforeAll(async () => {
    s3 = await startS3rver();
    harness = await new Harness({ s3 }).start();
  });
  afterAll(async () => {
    await harness?.close();
    await s3?.close();
  });

  it("stores the images in the bucket and the presigned URL returns the asset's bytes", async () => {
    const { apiKey } = await harness.createUser();
    const submitted = await harness.submit(apiKey, {
      type: "image",
      input: { prompt: "a bucket of paint", n: 2, size: "512x512" },
    });
    const job = await harness.waitForJob(apiKey, submitted.json().id);
    expect(job.status).toBe("completed");
    const rows = await new AssetRepository({ db: harness.db }).listForJob(String(job.id));
    expect(rows).toHaveLength(2);
    expect(await listKeys(harness.storage, `images/${job.id}/`)).toEqual(rows.map((row) => row.key));

    for (const image of imagesOf(job)) {
      const row = rows[image.index];
      expect(image.url?.startsWith(`${s3.endpoint}/${s3.bucket}/images/${job.id}/`)).toBe(true);
      const signed = new URL(image.url ?? "").searchParams;
      expect(signed.get("X-Amz-Signature")).toBeTruthy();
      const signedAt = Date.parse(
        (signed.get("X-Amz-Date") ?? "").replace(
          /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
          "$1-$2-$3T$4:$5:$6Z",
        ),
      );
      expect(Date.parse(image.urlExpiresAt ?? "")).toBeLessThanOrEqual(
        signedAt + Number(signed.get("X-Amz-Expires")) * 1_000,
      );
      const response = await fetch(image.url ?? "");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("image/png");
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(sha256(bytes)).toBe(row?.sha256);
      expect(sha256(bytes)).toBe(image.sha256);
      expect(imageDimensions(bytes)).toEqual({ width: 512, height: 512, mediaType: "image/png" });
      expect(image).toMatchObject({ width: 512, height: 512 });
    }
  });
});

describe("image jobs across a worker crash", () => {
  let harness: Harness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it("ends with exactly n assets and n objects, charged once, after kill -9 of its worker", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey } = await harness.createUser();
    const first = await harness.spawnWorker(FAST_STALL);
    const n = 3;
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        input: {
          prompt: "survives a crash",
          n,
          size: "256x256",
          providerOptions: { mock: { latencyMs: 1_500 } },
        },
      })
    ).json();
    await harness.waitForJob(apiKey, job.id, (current) => current.status === "active");
    first.kill("SIGKILL");
    await exited(first);

    // What a crash half way through storing would leave: one object and its row, with other bytes.
    const partial = Buffer.from("half-written image of the first attempt");
    const stalePut = await harness.storage.put(`images/${job.id}/0.png`, partial, {
      contentType: "image/png",
    });
    const record = await harness.jobs.find(job.id);
    await new AssetRepository({ db: harness.db }).saveForJob(
      { jobId: job.id, userId: record?.userId ?? "" },
      [
        {
          index: 0,
          key: stalePut.key,
          contentType: "image/png",
          bytes: stalePut.bytes,
          sha256: stalePut.sha256,
        },
      ],
    );

    await harness.spawnWorker(FAST_STALL);
    const finished = await harness.waitForJob(apiKey, job.id, undefined, 45_000);
    expect(finished.status).toBe("completed");
    // Two at least; a third when a loaded machine lets the short lock lapse once more.
    expect(finished.attempts).toBeGreaterThanOrEqual(2);

    const rows = await new AssetRepository({ db: harness.db }).listForJob(job.id);
    expect(rows.map((row) => row.index)).toEqual([0, 1, 2]);
    const keys = await listKeys(harness.storage, `images/${job.id}/`);
    expect(keys).toEqual(rows.map((row) => row.key));
    for (const row of rows) {
      expect(sha256(await readObject(harness.storage, row.key))).toBe(row.sha256);
    }
    expect(rows[0]?.sha256).not.toBe(stalePut.sha256);
    expect(imagesOf(finished).map((image) => image.sha256)).toEqual(rows.map((row) => row.sha256));
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(1);
    expect(await harness.db.asset.count()).toBe(n);
  }, 90_000);

  it("leaves no object of an earlier attempt whose images had another format", async () => {
    harness = await new Harness().start({ startWorker: false });
    const { apiKey, userId } = await harness.createUser();
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        input: { prompt: "png this time", n: 2, size: "256x256" },
      })
    ).json();
    // An earlier attempt, served by a provider answering WebP, stored one image and its row, then died.
    const earlier = await harness.storage.put(`images/${job.id}/0.webp`, Buffer.from("webp bytes"), {
      contentType: "image/webp",
    });
    await new AssetRepository({ db: harness.db }).saveForJob({ jobId: job.id, userId }, [
      { index: 0, key: earlier.key, contentType: "image/webp", bytes: earlier.bytes, sha256: earlier.sha256 },
    ]);

    await harness.startInProcessWorker();
    expect(await harness.waitForJob(apiKey, job.id)).toMatchObject({ status: "completed" });
    const rows = await new AssetRepository({ db: harness.db }).listForJob(job.id);
    expect(rows.map((row) => row.key)).toEqual([`images/${job.id}/0.png`, `images/${job.id}/1.png`]);
    expect(await listKeys(harness.storage, `images/${job.id}/`)).toEqual(rows.map((row) => row.key));
  });
});

describe("image jobs on the OpenAI and Gemini adapters (fake servers)", () => {
  let openai: FakeOpenAIServer;
  let gemini: FakeGeminiServer;
  let harness: Harness;
  let apiKey: string;
  let assets: AssetRepository;

  beforeAll(async () => {
    openai = await startFakeOpenAIServer({ apiKey: "openai-test-key" });
    gemini = await startFakeGeminiServer({ apiKey: "gemini-test-key" });
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "openai-test-key",
        OPENAI_BASE_URL: openai.url,
        GEMINI_API_KEY: "gemini-test-key",
        GEMINI_BASE_URL: gemini.url,
        // The fake serves its image links on loopback, which the SSRF guard refuses by default.
        GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS: "127.0.0.1",
      },
    }).start();
    ({ apiKey } = await harness.createUser());
    assets = new AssetRepository({ db: harness.db });
  });
  afterAll(async () => {
    await harness.close();
    await openai.close();
    await gemini.close();
  });

  async function expectStored(jobId: string, png: Uint8Array, n: number): Promise<void> {
    const rows = await assets.listForJob(jobId);
    expect(rows).toHaveLength(n);
    const dimensions = imageDimensions(png);
    expect(dimensions).toBeDefined();
    for (const row of rows) {
      expect(row).toMatchObject({
        contentType: "image/png",
        sha256: sha256(png),
        bytes: png.byteLength,
        width: dimensions?.width,
        height: dimensions?.height,
      });
      expect(sha256(await readObject(harness.storage, row.key))).toBe(sha256(png));
    }
    expect(await listKeys(harness.storage, `images/${jobId}/`)).toEqual(rows.map((row) => row.key));
  }

  it("runs a gpt-image-1 job through /v1/images/generations and prices it by size and quality", async () => {
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        provider: "openai",
        model: "gpt-image-1",
        input: { prompt: "a paper crane", n: 2, size: "1024x1024", quality: "low" },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({
      status: "completed",
      provider: "openai",
      model: "gpt-image-1",
      // 1024x1024 at low quality: 11,000 µUSD per image.
      costMicroUsd: 2 * 11_000,
    });
    const call = openai.requests.find((request) => request.path === "/v1/images/generations");
    expect(call?.body).toMatchObject({
      model: "gpt-image-1",
      prompt: "a paper crane",
      n: 2,
      size: "1024x1024",
      quality: "low",
    });
    await expectStored(job.id, fakeImagePng, 2);
    const images = imagesOf(finished);
    expect(images.map((image) => image.sha256)).toEqual([sha256(fakeImagePng), sha256(fakeImagePng)]);
    const usage = await harness.db.usageRecord.findFirstOrThrow({ where: { jobId: job.id } });
    expect(Number(usage.costMicroUsd)).toBe(22_000);
    expect(usage.images).toBe(2);
  });

  it("downloads an image OpenAI answers with a URL and shows its revised prompt", async () => {
    openai.queueResponse({
      body: {
        created: Math.floor(Date.now() / 1000),
        data: [
          { url: `${openai.origin}/files/generated.png`, revised_prompt: "A folded paper lantern, glowing" },
        ],
      },
    });
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        provider: "openai",
        model: "dall-e-3",
        input: { prompt: "a paper lantern", size: "1024x1024", quality: "hd" },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "completed", model: "dall-e-3", costMicroUsd: 80_000 });
    expect(openai.requests.some((request) => request.path === "/files/generated.png")).toBe(true);
    await expectStored(job.id, fakeImagePng, 1);
    expect(imagesOf(finished)[0]).toMatchObject({ revisedPrompt: "A folded paper lantern, glowing" });
  });

  it("fails a job whose provider answers with a link to the metadata service, without fetching it", async () => {
    // Every retry gets the same answer.
    openai.setHandler((request) =>
      request.path === "/v1/images/generations"
        ? {
            body: {
              created: Math.floor(Date.now() / 1000),
              data: [{ url: "http://169.254.169.254/latest/meta-data/iam/security-credentials/" }],
            },
          }
        : undefined,
    );
    onTestFinished(() => openai.setHandler(undefined));
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        provider: "openai",
        model: "dall-e-3",
        input: { prompt: "a paper lantern", size: "1024x1024" },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", error: { code: "provider_unavailable" } });
    // The operator's call log says why: the guard refused the address, nothing was fetched.
    const calls = await harness.db.providerCall.findMany({ where: { jobId: job.id, outcome: "error" } });
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(call.errorMessage).toContain("169.254.169.254, a metadata address");
    expect(await assets.listForJob(job.id)).toEqual([]);
  });

  it("runs a gemini-2.5-flash-image job, one generateContent call per image", async () => {
    const before = gemini.requests.length;
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        provider: "gemini",
        model: "gemini-2.5-flash-image",
        input: { prompt: "a paper boat", n: 2 },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({
      status: "completed",
      provider: "gemini",
      model: "gemini-2.5-flash-image",
      costMicroUsd: 2 * 39_000,
    });
    const calls = gemini.requests
      .slice(before)
      .filter((request) => request.path === "/v1beta/models/gemini-2.5-flash-image:generateContent");
    expect(calls).toHaveLength(2);
    await expectStored(job.id, fakeGeminiImagePng, 2);
  });

  it("fails an image job naming a text-only model with invalid_request, without calling the provider", async () => {
    const before = openai.requests.length;
    const job = (
      await harness.submit(apiKey, {
        type: "image",
        provider: "openai",
        model: "gpt-4o-mini",
        input: { prompt: "not a painter" },
      })
    ).json();
    const finished = await harness.waitForJob(apiKey, job.id);
    expect(finished).toMatchObject({ status: "failed", attempts: 1, error: { code: "invalid_request" } });
    expect((finished.error as { message: string }).message).toMatch(/cannot do image/);
    expect(openai.requests.length).toBe(before);
    expect(await assets.listForJob(job.id)).toEqual([]);
    expect(await harness.jobs.countUsageRecords(job.id)).toBe(0);
  });
});
