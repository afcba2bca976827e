import type { AddressInfo } from "node:net";
import {
  type FakeAnthropicServer,
  type FakeGeminiServer,
  type FakeOpenAIServer,
  startFakeAnthropicServer,
  startFakeGeminiServer,
  startFakeOpenAIServer,
} from "@genq/providers/testing";
import OpenAI, { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import type { ChatCompletion } from "openai/resources/chat/completions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness, waitUntil } from "./harness.ts";

/** One request line of a batch input file. */
function requestLine(customId: string, body: Record<string, unknown>, url = "/v1/chat/completions"): string {
  return JSON.stringify({ custom_id: customId, method: "POST", url, body });
}

function chat(model: string, content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, messages: [{ role: "user", content }], ...extra };
}

/** A JSONL file for `files.create`. */
function jsonl(lines: string[]) {
  return toFile(Buffer.from(`${lines.join("\n")}\n`), "requests.jsonl");
}

/** A line of an output or error file, in OpenAI's format. */
interface OutputLine {
  id: string;
  custom_id: string;
  response: {
    status_code: number;
    request_id: string;
    body: ChatCompletion & { error?: { type: string; code: string; message: string } };
  } | null;
  error: { code: string; message: string } | null;
}

/** Output or error file lines, parsed. */
async function fileLines(client: OpenAI, fileId: string): Promise<OutputLine[]> {
  const text = await (await client.files.content(fileId)).text();
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line));
}

describe("the OpenAI Batch API through the official openai SDK", () => {
  let openai: FakeOpenAIServer;
  let anthropic: FakeAnthropicServer;
  let gemini: FakeGeminiServer;
  let harness: Harness;
  let baseURL: string;
  let client: OpenAI;
  let userId: string;

  beforeAll(async () => {
    openai = await startFakeOpenAIServer({ apiKey: "sk-test-fake-key" });
    anthropic = await startFakeAnthropicServer({ apiKey: "anthropic-test-key" });
    gemini = await startFakeGeminiServer({ apiKey: "gemini-test-key" });
    harness = await new Harness({
      workerEnv: {
        OPENAI_API_KEY: "sk-test-fake-key",
        OPENAI_BASE_URL: openai.url,
        OPENAI_DEFAULT_MODEL: "gpt-4o-mini",
        ANTHROPIC_API_KEY: "anthropic-test-key",
        ANTHROPIC_BASE_URL: anthropic.url,
        GEMINI_API_KEY: "gemini-test-key",
        GEMINI_BASE_URL: gemini.url,
      },
    }).start();
    await harness.app.listen({ port: 0, host: "127.0.0.1" });
    baseURL = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}/openai/v1`;
    const user = await harness.createUser();
    userId = user.userId;
    client = new OpenAI({ apiKey: user.apiKey, baseURL, maxRetries: 0 });
  });
  beforeEach(() => openai.reset());
  afterAll(async () => {
    await harness.close();
    await openai.close();
    await anthropic.close();
    await gemini.close();
  });

  async function waitForBatch(id: string, reader: OpenAI = client): Promise<Batch> {
    let last: Batch | undefined;
    await waitUntil(async () => {
      last = await reader.batches.retrieve(id);
      return isFinal(last);
    }, 30_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last)}`);
    });
    return last as Batch;
  }

  it("runs a file end to end on OpenAI, Anthropic and Gemini models, and the output parses as OpenAI's", async () => {
    const input = await client.files.create({
      file: await jsonl([
        requestLine("first", chat("gpt-4o-mini", "Say one", { max_tokens: 20, temperature: 0.2 })),
        requestLine("second", {
          model: "claude-haiku-4-5",
          messages: [
            { role: "developer", content: "Answer in one line." },
            { role: "user", content: [{ type: "text", text: "Say two" }] },
          ],
          max_completion_tokens: 30,
        }),
        requestLine("third", chat("gemini-2.5-flash", "Say three")),
      ]),
      purpose: "batch",
    });
    expect(input).toMatchObject({
      object: "file",
      purpose: "batch",
      status: "processed",
      filename: "requests.jsonl",
    });
    expect(input.id).toMatch(/^file-[0-9a-f]{32}$/);
    expect(input.bytes).toBeGreaterThan(100);

    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { job: "nightly" },
    });
    expect(created).toMatchObject({
      object: "batch",
      endpoint: "/v1/chat/completions",
      input_file_id: input.id,
      completion_window: "24h",
      metadata: { job: "nightly" },
      errors: null,
      output_file_id: null,
      request_counts: { total: 3 },
    });
    expect(["in_progress", "completed"]).toContain(created.status);
    expect(created.expires_at).toBe(created.created_at + 24 * 3600);

    const finished = await waitForBatch(created.id);
    expect(finished).toMatchObject({
      status: "completed",
      request_counts: { total: 3, completed: 3, failed: 0 },
      error_file_id: null,
    });
    expect(finished.completed_at).toBeGreaterThanOrEqual(finished.in_progress_at ?? 0);
    expect(finished.usage?.input_tokens).toBeGreaterThan(0);
    expect(finished.usage?.total_tokens).toBe(
      (finished.usage?.input_tokens ?? 0) + (finished.usage?.output_tokens ?? 0),
    );

    const output = await client.files.retrieve(finished.output_file_id as string);
    expect(output).toMatchObject({ object: "file", purpose: "batch_output" });
    const lines = await fileLines(client, output.id);
    expect(output.bytes).toBe(
      lines.reduce((sum, line) => sum + Buffer.byteLength(JSON.stringify(line)) + 1, 0),
    );
    expect(lines.map((line) => line.custom_id)).toEqual(["first", "second", "third"]);
    for (const line of lines) {
      expect(line.id).toMatch(/^batch_req_[0-9a-f]{32}$/);
      expect(line.error).toBeNull();
      expect(line.response?.status_code).toBe(200);
      expect(line.response?.request_id).toBeTruthy();
      expect(line.response?.body).toMatchObject({
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant" }, finish_reason: "stop" }],
      });
      const usage = line.response?.body.usage;
      expect(usage?.prompt_tokens).toBeGreaterThan(0);
      expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    }
    expect(lines[0]?.response?.body.model).toBe("gpt-4o-mini");
    expect(lines[0]?.response?.body.choices[0]?.message.content).toContain("Say one");
    expect(lines[1]?.response?.body.model).toMatch(/^claude-haiku-4-5/);
    expect(lines[1]?.response?.body.choices[0]?.message.content).toContain("Say two");
    expect(lines[2]?.response?.body.model).toBe("gemini-2.5-flash");
    expect(lines[2]?.response?.body.choices[0]?.message.content).toContain("Say three");
    expect(
      gemini.requests.some((request) => request.path === "/v1beta/models/gemini-2.5-flash:generateContent"),
    ).toBe(true);

    // Each line went to the provider its model names, with its parameters mapped.
    const openAICalls = openai.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(openAICalls.map((call) => (call.body as { model: string }).model)).toEqual(["gpt-4o-mini"]);
    expect(openAICalls.find((call) => JSON.stringify(call.body).includes("Say one"))?.body).toMatchObject({
      max_tokens: 20,
      temperature: 0.2,
    });
    const anthropicCall = anthropic.requests.find((request) => request.path === "/v1/messages");
    expect(anthropicCall?.body).toMatchObject({
      model: "claude-haiku-4-5",
      system: "Answer in one line.",
      max_tokens: 30,
    });

    // The items are genq jobs of a genq batch, each carrying its custom_id.
    const jobs = await harness.db.job.findMany({ where: { userId }, orderBy: { itemIndex: "asc" } });
    expect(jobs.map((job) => (job.metadata as { custom_id: string }).custom_id)).toEqual([
      "first",
      "second",
      "third",
    ]);
    expect(new Set(jobs.map((job) => job.batchId)).size).toBe(1);

    // Listings, OpenAI style.
    const batches = await client.batches.list({ limit: 10 });
    expect(batches.data.map((batch) => batch.id)).toContain(created.id);
    const files = await client.files.list({ purpose: "batch" });
    expect(files.data.map((file) => file.id)).toContain(input.id);
    // The input file reads back byte for byte.
    expect(await (await client.files.content(input.id)).text()).toContain('"custom_id":"first"');
  });

  it("fails a file with invalid lines at validation, listing them by line number", async () => {
    const input = await client.files.create({
      file: await jsonl([
        requestLine("ok", chat("gpt-4o-mini", "fine")),
        "{not json",
        requestLine("ok", chat("gpt-4o-mini", "duplicate id")),
        requestLine("embed", { model: "text-embedding-3-small", input: "x" }, "/v1/embeddings"),
        requestLine("no-model", { messages: [{ role: "user", content: "x" }] }),
        requestLine("tools", chat("gpt-4o-mini", "x", { tools: [] })),
      ]),
      purpose: "batch",
    });
    expect(input.status_details).toMatch(/5 of 6 lines are invalid/);
    const batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    expect(batch.status).toBe("failed");
    expect(batch.failed_at).toBeGreaterThan(0);
    expect(batch.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(batch.errors?.data?.map((error) => [error.line, error.code, error.param])).toEqual([
      [2, "invalid_json_line", null],
      [3, "duplicate_custom_id", "custom_id"],
      [4, "unsupported_url", "url"],
      [5, "missing_required_parameter", "body.model"],
      [6, "invalid_value", "body.tools"],
    ]);
    expect(batch.errors?.data?.[2]?.message).toMatch(/embeddings/);
    expect((await client.batches.retrieve(batch.id)).status).toBe("failed");
    // Nothing ran.
    expect(openai.requests.filter((request) => request.path === "/v1/chat/completions")).toHaveLength(0);
  });

  it("reports failed requests in the error file with their status and error body", async () => {
    openai.setHandler((request) =>
      JSON.stringify(request.body).includes("refuse me")
        ? {
            status: 400,
            body: {
              error: { message: "bad request", type: "invalid_request_error", param: null, code: null },
            },
          }
        : undefined,
    );
    const input = await client.files.create({
      file: await jsonl([
        requestLine("good", chat("gpt-4o-mini", "hello")),
        requestLine("bad", chat("gpt-4o-mini", "refuse me")),
      ]),
      purpose: "batch",
    });
    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const finished = await waitForBatch(created.id);
    expect(finished).toMatchObject({
      status: "completed",
      request_counts: { total: 2, completed: 1, failed: 1 },
    });
    const [good] = await fileLines(client, finished.output_file_id as string);
    expect(good?.custom_id).toBe("good");
    const errors = await fileLines(client, finished.error_file_id as string);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: "bad",
      error: null,
      response: {
        status_code: 400,
        body: { error: { type: "invalid_request_error", code: "invalid_request" } },
      },
    });
  });

  it("cancels a batch: requests not started end in the error file as batch_cancelled", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    openai.setHandler(async () => {
      await gate;
      return undefined;
    });
    const lines = Array.from({ length: 40 }, (_, index) =>
      requestLine(`c${index}`, chat("gpt-4o-mini", `n${index}`)),
    );
    const input = await client.files.create({ file: await jsonl(lines), purpose: "batch" });
    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitUntil(() => openai.requests.some((request) => request.path === "/v1/chat/completions"), 10_000);
    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe("cancelling");
    expect(cancelling.cancelling_at).toBeGreaterThan(0);
    release();
    const cancelled = await waitForBatch(created.id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.cancelled_at).toBeGreaterThan(0);
    const completed = cancelled.request_counts?.completed ?? 0;
    expect(completed).toBeGreaterThan(0);
    expect(completed).toBeLessThan(40);
    const errors = await fileLines(client, cancelled.error_file_id as string);
    expect(errors).toHaveLength(40 - completed);
    expect(errors[0]).toMatchObject({ response: null, error: { code: "batch_cancelled" } });
    // Cancelling again changes nothing; a completed batch cannot be cancelled.
    expect((await client.batches.cancel(created.id)).status).toBe("cancelled");
  });

  it("expires a batch still running when its 24 h window has passed", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    openai.setHandler(async () => {
      await gate;
      return undefined;
    });
    const lines = Array.from({ length: 30 }, (_, index) =>
      requestLine(`e${index}`, chat("gpt-4o-mini", `e${index}`)),
    );
    const input = await client.files.create({ file: await jsonl(lines), purpose: "batch" });
    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    await waitUntil(() => openai.requests.some((request) => request.path === "/v1/chat/completions"), 10_000);
    // The window passes (as if 24 hours went by).
    await harness.db.openAIBatch.updateMany({ data: { expiresAt: new Date(Date.now() - 1_000) } });
    expect((await client.batches.retrieve(created.id)).status).toBe("cancelling");
    release();
    const expired = await waitForBatch(created.id);
    expect(expired.status).toBe("expired");
    expect(expired.expired_at).toBeGreaterThan(0);
    const errors = await fileLines(client, expired.error_file_id as string);
    expect(errors.length).toBe(30 - (expired.request_counts?.completed ?? 0));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((line) => line.error?.code === "batch_expired" && line.response === null)).toBe(true);
  });

  it("refuses a batch the quota cannot fit with 429 insufficient_quota", async () => {
    const user = await harness.createUser();
    const poor = new OpenAI({ apiKey: user.apiKey, baseURL, maxRetries: 0 });
    await harness.quota.setUserLimits(user.userId, { textTokenLimit: 10 });
    const input = await poor.files.create({
      file: await jsonl([requestLine("one", chat("gpt-4o-mini", "too big for ten tokens"))]),
      purpose: "batch",
    });
    const refused = await poor.batches
      .create({ input_file_id: input.id, endpoint: "/v1/chat/completions", completion_window: "24h" })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refused).toMatchObject({ status: 429, type: "insufficient_quota", code: "quota_exceeded" });
    expect((await poor.batches.list()).data).toHaveLength(0);
  });

  it("answers another user's files and batches with 404, and checks what batches.create is given", async () => {
    const input = await client.files.create({
      file: await jsonl([requestLine("mine", chat("gpt-4o-mini", "private"))]),
      purpose: "batch",
    });
    const batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const other = new OpenAI({ apiKey: (await harness.createUser()).apiKey, baseURL, maxRetries: 0 });
    for (const attempt of [
      () => other.files.retrieve(input.id),
      () => other.files.content(input.id),
      () => other.files.delete(input.id),
      () => other.batches.retrieve(batch.id),
      () => other.batches.cancel(batch.id),
      () =>
        other.batches.create({
          input_file_id: input.id,
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        }),
    ]) {
      const error = await attempt().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      expect(error).toMatchObject({ status: 404, type: "invalid_request_error", code: "not_found" });
    }
    expect((await other.files.list()).data).toHaveLength(0);
    expect((await other.batches.list()).data).toHaveLength(0);

    const badRequests = [
      { input_file_id: input.id, endpoint: "/v1/embeddings", completion_window: "24h", param: "endpoint" },
      {
        input_file_id: input.id,
        endpoint: "/v1/chat/completions",
        completion_window: "1h",
        param: "completion_window",
      },
    ] as const;
    for (const { param, ...body } of badRequests) {
      const error = await client.batches.create(body as never).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ status: 400, param, type: "invalid_request_error" });
    }
    const tooMuchMetadata = Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"]));
    await expect(
      client.batches.create({
        input_file_id: input.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: tooMuchMetadata,
      }),
    ).rejects.toMatchObject({ status: 400, param: "metadata" });
    await expect(client.files.create({ file: await jsonl([]), purpose: "fine-tune" })).rejects.toMatchObject({
      status: 400,
      param: "purpose",
    });
    // A line over the 1 MiB line limit refuses the upload with 413, naming the line; nothing is stored.
    const filesBefore = (await client.files.list()).data.length;
    const huge = requestLine("huge", chat("gpt-4o-mini", "x".repeat(1024 * 1024 + 10)));
    await expect(
      client.files.create({
        file: await jsonl([requestLine("a", chat("gpt-4o-mini", "a")), huge]),
        purpose: "batch",
      }),
    ).rejects.toMatchObject({
      status: 413,
      code: "payload_too_large",
      message: expect.stringMatching(/line 2/),
    });
    expect((await client.files.list()).data).toHaveLength(filesBefore);
    const anonymous = new OpenAI({ apiKey: "genq_wrong", baseURL, maxRetries: 0 });
    await expect(anonymous.files.list()).rejects.toMatchObject({ status: 401, type: "authentication_error" });

    // Deleting a file: gone for its owner too.
    expect(await client.files.delete(input.id)).toEqual({ id: input.id, object: "file", deleted: true });
    await expect(client.files.retrieve(input.id)).rejects.toMatchObject({ status: 404 });
    await waitForBatch(batch.id);
  });

  it("answers a malformed or cut-off multipart upload with 400 in OpenAI's error shape, storing nothing", async () => {
    const apiKey = (client as unknown as { apiKey: string }).apiKey;
    const before = await harness.db.openAIFile.count({ where: { userId } });
    for (const payload of [
      // Cut off inside the file part (no closing boundary): the parser's error, not a 500.
      '--zzz\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n{"custom_id"',
      '--zzz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
    ]) {
      const response = await harness.app.inject({
        method: "POST",
        url: "/openai/v1/files",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "multipart/form-data; boundary=zzz" },
        payload,
      });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json()).toMatchObject({
        error: { type: "invalid_request_error", code: "invalid_request" },
      });
    }
    expect(await harness.db.openAIFile.count({ where: { userId } })).toBe(before);
  });

  it("pages batches with after and limit", async () => {
    const user = await harness.createUser();
    const paged = new OpenAI({ apiKey: user.apiKey, baseURL, maxRetries: 0 });
    const input = await paged.files.create({
      file: await jsonl([requestLine("x", chat("gpt-4o-mini", "x"))]),
      purpose: "batch",
    });
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) {
      ids.push(
        (
          await paged.batches.create({
            input_file_id: input.id,
            endpoint: "/v1/chat/completions",
            completion_window: "24h",
          })
        ).id,
      );
    }
    const first = await paged.batches.list({ limit: 2 });
    expect(first.data.map((batch) => batch.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await paged.batches.list({ limit: 2, after: ids[1] });
    expect(second.data.map((batch) => batch.id)).toEqual([ids[0]]);
    expect(second.has_more).toBe(false);
    // The SDK's auto-pagination walks the same cursor.
    const all: string[] = [];
    for await (const batch of paged.batches.list({ limit: 1 })) all.push(batch.id);
    expect(all).toEqual([ids[2], ids[1], ids[0]]);
    for (const id of ids) await waitForBatch(id, paged);
  });
});

function isFinal(batch: Batch): boolean {
  return ["completed", "failed", "cancelled", "expired"].includes(batch.status);
}
