import { createHash } from "node:crypto";
import { buildApp } from "@genq/api";
import { AssetRepository } from "@genq/db";
import { imageDimensions, renderPng } from "@genq/providers";
import {
  type FakeGeminiServer,
  type FakeOpenAIServer,
  fakeImagePng,
  startFakeGeminiServer,
  startFakeOpenAIServer,
} from "@genq/providers/testing";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, Harness } from "./harness.ts";

/** An upload as the API shows it. */
interface UploadView {
  id: string;
  contentType: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
  createdAt: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A multipart/form-data body as a browser or curl -F would send it. */
async function multipart(
  parts: Array<{ field: string; value: Uint8Array | string; filename?: string; type?: string }>,
): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const part of parts) {
    if (typeof part.value === "string" && part.filename === undefined) form.append(part.field, part.value);
    else {
      const blob = new Blob([part.value], { type: part.type ?? "application/octet-stream" });
      form.append(part.field, blob, part.filename ?? "file");
    }
  }
  const request = new Request("http://localhost/", { method: "POST", body: form });
  return {
    payload: Buffer.from(await request.arrayBuffer()),
    headers: { "content-type": request.headers.get("content-type") ?? "" },
  };
}

async function upload(
  app: FastifyInstance,
  apiKey: string,
  bytes: Uint8Array | string,
  options: { field?: string; filename?: string; type?: string } = {},
) {
  const body = await multipart([
    {
      field: options.field ?? "file",
      value: bytes,
      filename: options.filename ?? "picture.png",
      type: options.type ?? "image/png",
    },
  ]);
  return app.inject({
    method: "POST",
    url: "/v1/uploads",
    headers: { authorization: `Bearer ${apiKey}`, ...body.headers },
    payload: body.payload,
  });
}

describe("uploads and image edits and variations", () => {
  let openai: FakeOpenAIServer;
  let gemini: FakeGeminiServer;
  let harness: Harness;
  let apiKey: string;
  let userId: string;
  let assets: AssetRepository;
  const source = renderPng({ width: 320, height: 288, seed: "upload source" });
  const mask = renderPng({ width: 320, height: 288, seed: "upload mask" });

  beforeAll(async () => {
    openai = await startFakeOpenAIServer({ apiKey: "openai-test-key" });
    gemini = await startFakeGeminiServer({ apiKey: "gemini-test-key" });
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "openai-test-key",
        OPENAI_BASE_URL: openai.url,
        GEMINI_API_KEY: "gemini-test-key",
        GEMINI_BASE_URL: gemini.url,
      },
    }).start();
    ({ apiKey, userId } = await harness.createUser());
    assets = new AssetRepository({ db: harness.db });
  });
  afterAll(async () => {
    await harness.close();
    await openai.close();
    await gemini.close();
  });

  async function uploaded(bytes: Uint8Array): Promise<UploadView> {
    const response = await upload(harness.app, apiKey, bytes);
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  async function completedJob(body: Record<string, unknown>) {
    const submitted = await harness.submit(apiKey, { type: "image", ...body });
    expect(submitted.statusCode, submitted.body).toBe(202);
    return harness.waitForJob(apiKey, submitted.json().id);
  }

  it("stores a PNG and answers 201 with its type, size, dimensions and sha256", async () => {
    const response = await upload(harness.app, apiKey, source, { type: "application/octet-stream" });
    expect(response.statusCode, response.body).toBe(201);
    const view: UploadView = response.json();
    expect(view).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      contentType: "image/png",
      bytes: source.byteLength,
      sha256: sha256(source),
      width: 320,
      height: 288,
      createdAt: expect.any(String),
    });
    const object = await harness.storage.head(`uploads/${userId}/${view.id}`);
    expect(object).toMatchObject({ bytes: source.byteLength, contentType: "image/png" });

    const read = await harness.app.inject({
      method: "GET",
      url: `/v1/uploads/${view.id}`,
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(view);
  });

  it("documents the upload routes in the OpenAPI document", async () => {
    const document = (await harness.app.inject({ method: "GET", url: "/docs/json" })).json();
    expect(Object.keys(document.paths["/v1/uploads"])).toEqual(["post"]);
    expect(document.paths["/v1/uploads"].post.responses).toHaveProperty("413");
    expect(document.paths["/v1/uploads/{id}"]).toHaveProperty("get");
  });

  it("answers 415 for a file that is not a PNG, JPEG or WebP, whatever it claims to be", async () => {
    const response = await upload(harness.app, apiKey, "just some text\n", { filename: "notes.png" });
    expect(response.statusCode).toBe(415);
    expect(response.json().error).toMatchObject({
      code: "unsupported_media_type",
      details: { accepted: ["image/png", "image/jpeg", "image/webp"] },
    });

    const json = await harness.app.inject({
      method: "POST",
      url: "/v1/uploads",
      headers: { authorization: `Bearer ${apiKey}` },
      payload: { file: "x" },
    });
    expect(json.statusCode).toBe(415);
    expect(json.json().error.message).toMatch(/multipart\/form-data/);
  });

  it("answers 400 when the form has no file, or the file is in another field", async () => {
    const noFile = await multipart([{ field: "purpose", value: "edit" }]);
    const missing = await harness.app.inject({
      method: "POST",
      url: "/v1/uploads",
      headers: { authorization: `Bearer ${apiKey}`, ...noFile.headers },
      payload: noFile.payload,
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatchObject({ code: "invalid_request", details: { field: "file" } });

    const wrongField = await upload(harness.app, apiKey, source, { field: "image" });
    expect(wrongField.statusCode).toBe(400);
    expect(wrongField.json().error.message).toMatch(/field `file`, not `image`/);
  });

  it("hides another user's upload (404) and refuses it in a job, naming the field", async () => {
    const mine = await uploaded(source);
    const other = await harness.createUser();
    const read = await harness.app.inject({
      method: "GET",
      url: `/v1/uploads/${mine.id}`,
      headers: { authorization: `Bearer ${other.apiKey}` },
    });
    expect(read.statusCode).toBe(404);

    const submitted = await harness.submit(other.apiKey, {
      type: "image",
      provider: "mock",
      input: { operation: "variation", image: mine.id },
    });
    expect(submitted.statusCode).toBe(400);
    expect(submitted.json().error).toMatchObject({
      code: "invalid_request",
      details: { field: "input.image", id: mine.id },
    });

    const maskOfNobody = await harness.submit(apiKey, {
      type: "image",
      provider: "mock",
      input: { operation: "edit", prompt: "x", image: mine.id, mask: "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b" },
    });
    expect(maskOfNobody.statusCode).toBe(400);
    expect(maskOfNobody.json().error.details).toMatchObject({ field: "input.mask" });
  });

  it("refuses an edit without an image and a generation without a prompt, naming the field", async () => {
    const noImage = await harness.submit(apiKey, {
      type: "image",
      input: { operation: "edit", prompt: "x" },
    });
    expect(noImage.statusCode).toBe(400);
    expect(noImage.json().error).toMatchObject({
      code: "invalid_request",
      details: { field: "input.image" },
    });
    const noPrompt = await harness.submit(apiKey, { type: "image", input: {} });
    expect(noPrompt.statusCode).toBe(400);
    expect(noPrompt.json().error.details).toMatchObject({ field: "input.prompt" });
  });

  it("runs a mock edit with image and mask, storing images the size of the source", async () => {
    const image = await uploaded(source);
    const maskUpload = await uploaded(mask);
    const finished = await completedJob({
      provider: "mock",
      input: { operation: "edit", prompt: "add a moon", image: image.id, mask: maskUpload.id, n: 2 },
    });
    expect(finished).toMatchObject({ status: "completed", provider: "mock" });
    const rows = await assets.listForJob(finished.id as string);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({ contentType: "image/png", width: 320, height: 288 });
    }
    const images = (finished.result as { images: Array<{ sha256: string; revisedPrompt?: string }> }).images;
    expect(images.map((each) => each.sha256)).toEqual(rows.map((row) => row.sha256));
    expect(images[0]?.revisedPrompt).toBe("add a moon");
  });

  it("runs a mock variation without a prompt", async () => {
    const image = await uploaded(source);
    const finished = await completedJob({
      provider: "mock",
      input: { operation: "variation", image: image.id, size: "256x256" },
    });
    expect(finished).toMatchObject({ status: "completed" });
    const rows = await assets.listForJob(finished.id as string);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ width: 256, height: 256 });
  });

  it("sends an OpenAI edit as multipart with the uploaded bytes", async () => {
    const image = await uploaded(source);
    const finished = await completedJob({
      provider: "openai",
      model: "gpt-image-1",
      input: {
        operation: "edit",
        prompt: "paint it blue",
        image: image.id,
        size: "1024x1024",
        quality: "low",
      },
    });
    expect(finished).toMatchObject({ status: "completed", provider: "openai", model: "gpt-image-1" });
    const call = openai.requests.find((request) => request.path === "/v1/images/edits");
    expect(call?.body).toMatchObject({
      model: "gpt-image-1",
      prompt: "paint it blue",
      n: "1",
      image: { contentType: "image/png", bytes: new Uint8Array(source) },
    });
    const rows = await assets.listForJob(finished.id as string);
    expect(rows.map((row) => row.sha256)).toEqual([sha256(fakeImagePng)]);
    expect(imageDimensions(fakeImagePng)).toMatchObject({ width: rows[0]?.width, height: rows[0]?.height });
  });

  it("refuses an edit on a provider that cannot edit with a 400 naming the operation", async () => {
    const image = await uploaded(source);
    const response = await harness.submit(apiKey, {
      type: "image",
      provider: "gemini",
      model: "gemini-2.5-flash-image",
      input: { operation: "edit", prompt: "add a hat", image: image.id },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({
      code: "invalid_request",
      details: { field: "input.operation" },
    });
    expect(response.json().error.message).toMatch(/edit is not offered by gemini/);
    expect(gemini.requests.filter((request) => request.method === "POST")).toEqual([]);
  });
});

describe("upload size limit", () => {
  let harness: Harness;
  let app: FastifyInstance;

  beforeAll(async () => {
    harness = await new Harness().start({ startWorker: false });
    app = await buildApp({
      db: harness.db,
      redis: harness.redis,
      queues: harness.queues,
      storage: harness.storage,
      logger: false,
      admin: ADMIN,
      uploadLimitBytes: 4_096,
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await harness.close();
  });

  it("answers 413 payload_too_large for a file over the limit and stores nothing", async () => {
    const { apiKey, userId } = await harness.createUser();
    const large = renderPng({ width: 200, height: 200, seed: "too large" });
    expect(large.byteLength).toBeGreaterThan(4_096);
    const response = await upload(app, apiKey, large);
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({
      code: "payload_too_large",
      details: { limitBytes: 4_096 },
    });
    const keys: string[] = [];
    for await (const key of harness.storage.list(`uploads/${userId}/`)) keys.push(key);
    expect(keys).toEqual([]);

    const small = renderPng({ width: 8, height: 8, seed: "small" });
    expect((await upload(app, apiKey, small)).statusCode).toBe(201);
  });
});
