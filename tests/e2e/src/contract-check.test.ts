import { describe, expect, it } from "vitest";
import { checkResponse, invalidExamples } from "./contract-check.ts";

const JOB_ID = "0193a8f2-7c41-7d2e-9a6b-3f1e2d4c5b6a";
const job = {
  id: JOB_ID,
  object: "job",
  type: "text",
  status: "completed",
  priority: "normal",
  provider: "mock",
  model: "mock-small",
  progress: 100,
  attempts: 1,
  cancelRequested: false,
  input: { prompt: "hi" },
  metadata: null,
  result: { type: "text", text: "hello", finishReason: "stop", provider: "mock", model: "mock-small" },
  error: null,
  usage: { inputTokens: 1, outputTokens: 1 },
  costMicroUsd: 0,
  priceVersion: null,
  createdAt: "2026-12-03T16:00:00.000Z",
  queuedAt: "2026-12-03T16:00:00.000Z",
  startedAt: "2026-12-03T16:00:00.000Z",
  finishedAt: "2026-12-03T16:00:01.000Z",
  batchId: null,
  itemIndex: null,
  webhook: null,
  links: { self: `/v1/jobs/${JOB_ID}`, cancel: `/v1/jobs/${JOB_ID}/cancel` },
};

function response(status: number, body: unknown, contentType = "application/json; charset=utf-8") {
  return {
    method: "POST",
    url: `/v1/jobs/${JOB_ID}/cancel`,
    status,
    contentType,
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

describe("the contract check of e2e responses", () => {
  it("accepts a response the document describes", () => {
    expect(checkResponse(response(200, job))).toBeUndefined();
  });

  it("refuses a status the operation does not list", () => {
    expect(checkResponse(response(418, job))).toBe("status 418 is not listed");
  });

  it("refuses a content type the response does not list", () => {
    expect(checkResponse(response(200, "ok", "text/plain"))).toMatch(
      /content type text\/plain is not listed/,
    );
  });

  it("refuses a body that does not match, naming the field", () => {
    expect(checkResponse(response(200, { ...job, status: "done" }))).toMatch(/status/);
    expect(checkResponse(response(200, { ...job, result: { type: "text", text: 1 } }))).toMatch(/^body:/);
  });

  it("refuses an error whose code is not in the catalogue", () => {
    const body = { error: { code: "oops", message: "x" } };
    expect(checkResponse(response(404, body))).toMatch(/^body:/);
    expect(checkResponse(response(404, { error: { code: "not_found", message: "x" } }))).toBeUndefined();
  });

  it("checks each SSE event's data and each JSONL line", () => {
    const sse = (data: string) => ({
      method: "GET",
      url: `/v1/jobs/${JOB_ID}/events`,
      status: 200,
      contentType: "text/event-stream; charset=utf-8",
      body: `: hello\n\nid: 1-0\nevent: job.started\ndata: ${data}\n\n`,
    });
    expect(
      checkResponse(sse(JSON.stringify({ id: JOB_ID, object: "job", status: "active" }))),
    ).toBeUndefined();
    expect(checkResponse(sse(JSON.stringify({ id: JOB_ID, object: "batch", status: "active" })))).toMatch(
      /^body:/,
    );
    const jsonl = (lines: unknown[]) => ({
      method: "GET",
      url: `/v1/batches/${JOB_ID}/results.jsonl`,
      status: 200,
      contentType: "application/x-ndjson",
      body: lines.map((line) => JSON.stringify(line)).join("\n"),
    });
    expect(checkResponse(jsonl([{ itemIndex: 0 }]))).toMatch(/^body:/);
  });

  it("leaves out Bull Board, the docs and OpenAI's routes", () => {
    for (const url of ["/admin/queues/api/queues", "/docs/json", "/openai/v1/chat/completions"]) {
      expect(
        checkResponse({ method: "GET", url, status: 200, contentType: "text/html", body: "<html>" }),
      ).toBe(undefined);
    }
  });

  it("finds every example in the document valid against its schema", () => {
    expect(invalidExamples()).toEqual([]);
  });
});
