import { randomBytes } from "node:crypto";
import type { RecordedFile, RecordedRequest } from "../../testing/fake-server-support.ts";

/** How a fake OpenAI batch ends once it has run. */
export type FakeOpenAIBatchOutcome =
  /** Every request ran. */
  | { status: "completed" }
  /** The window passed after the first `ran` requests (default half); the rest expire. */
  | { status: "expired"; ran?: number }
  /** The batch is refused at validation; no request runs. */
  | { status: "failed"; message?: string };

/** A per-request answer inside a batch: an error status and body, or undefined to answer normally. */
export type FakeOpenAIBatchRequestOutcome = { status: number; body: unknown } | undefined;

/** The fake's batch state, for tests to inspect and script. */
export interface FakeOpenAIBatches {
  /** Every batch created, by id. */
  readonly batches: ReadonlyMap<string, FakeOpenAIBatch>;
  /** How batches created from now on end. Default `completed`. */
  setOutcome(outcome: FakeOpenAIBatchOutcome): void;
  /** Decides per request whether it fails inside the batch (partial failures). */
  setRequestOutcome(
    decide: ((customId: string, body: unknown) => FakeOpenAIBatchRequestOutcome) | undefined,
  ): void;
  /** How many `retrieve` calls a batch stays in progress before it ends. Default 1. */
  setPollsUntilEnd(polls: number): void;
}

/** One batch the fake holds. */
export interface FakeOpenAIBatch {
  id: string;
  status:
    | "validating"
    | "in_progress"
    | "finalizing"
    | "completed"
    | "failed"
    | "expired"
    | "cancelling"
    | "cancelled";
  inputFileId: string;
  requests: Array<{ custom_id: string; body: Record<string, unknown> }>;
  outcome: FakeOpenAIBatchOutcome;
  polls: number;
  createdAt: number;
  metadata: unknown;
  outputFileId?: string;
  errorFileId?: string;
  errors?: {
    object: "list";
    data: Array<{ code: string; message: string; line: number | null; param: null }>;
  };
  counts: { total: number; completed: number; failed: number };
}

interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  bytes: Uint8Array;
  createdAt: number;
}

type Answer = { status?: number; body?: unknown };

/**
 * OpenAI's Files and Batches endpoints as the public API reference describes them
 * (`POST /v1/files`, `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches`,
 * `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`), in memory. A batch
 * advances at each retrieve: `validating` → `in_progress` → its scripted outcome,
 * writing an output file (`{id, custom_id, response: {status_code, request_id, body}, error}`)
 * and an error file (failed requests; `batch_expired` / `batch_cancelled` for those
 * that never ran). `answerChat` makes a request's chat.completion.
 */
export function createFakeOpenAIBatches(answerChat: (body: Record<string, unknown>) => unknown): {
  control: FakeOpenAIBatches;
  handle(request: RecordedRequest): Answer | undefined;
} {
  const files = new Map<string, StoredFile>();
  const batches = new Map<string, FakeOpenAIBatch>();
  let outcome: FakeOpenAIBatchOutcome = { status: "completed" };
  let requestOutcome: ((customId: string, body: unknown) => FakeOpenAIBatchRequestOutcome) | undefined;
  let pollsUntilEnd = 1;

  function storeFile(filename: string, purpose: string, bytes: Uint8Array): StoredFile {
    const file = {
      id: `file-${randomBytes(12).toString("hex")}`,
      filename,
      purpose,
      bytes,
      createdAt: now(),
    };
    files.set(file.id, file);
    return file;
  }

  function fileObject(file: StoredFile) {
    return {
      id: file.id,
      object: "file",
      bytes: file.bytes.byteLength,
      created_at: file.createdAt,
      filename: file.filename,
      purpose: file.purpose,
      status: "processed",
      status_details: null,
    };
  }

  function batchObject(batch: FakeOpenAIBatch) {
    return {
      id: batch.id,
      object: "batch",
      endpoint: "/v1/chat/completions",
      errors: batch.errors ?? null,
      input_file_id: batch.inputFileId,
      completion_window: "24h",
      status: batch.status,
      output_file_id: batch.outputFileId ?? null,
      error_file_id: batch.errorFileId ?? null,
      created_at: batch.createdAt,
      in_progress_at: null,
      expires_at: batch.createdAt + 86_400,
      finalizing_at: null,
      completed_at: batch.status === "completed" ? now() : null,
      failed_at: batch.status === "failed" ? now() : null,
      expired_at: batch.status === "expired" ? now() : null,
      cancelling_at: null,
      cancelled_at: batch.status === "cancelled" ? now() : null,
      request_counts: batch.counts,
      metadata: batch.metadata ?? null,
    };
  }

  /** Runs a batch to its end: `ran` requests get answers, the rest `skipCode`. */
  function finish(batch: FakeOpenAIBatch, ran: number, skipCode: string | undefined) {
    const output: string[] = [];
    const errors: string[] = [];
    batch.requests.forEach((request, index) => {
      const lineId = `batch_req_${randomBytes(12).toString("hex")}`;
      const requestId = `req_${randomBytes(12).toString("hex")}`;
      if (index >= ran) {
        const message =
          skipCode === "batch_expired"
            ? "This request could not be executed before the completion window expired."
            : "This request was not executed because the batch was cancelled.";
        errors.push(
          JSON.stringify({
            id: lineId,
            custom_id: request.custom_id,
            response: null,
            error: { code: skipCode, message },
          }),
        );
        return;
      }
      const failure = requestOutcome?.(request.custom_id, request.body);
      if (failure !== undefined) {
        batch.counts.failed += 1;
        errors.push(
          JSON.stringify({
            id: lineId,
            custom_id: request.custom_id,
            response: { status_code: failure.status, request_id: requestId, body: failure.body },
            error: null,
          }),
        );
        return;
      }
      batch.counts.completed += 1;
      output.push(
        JSON.stringify({
          id: lineId,
          custom_id: request.custom_id,
          response: { status_code: 200, request_id: requestId, body: answerChat(request.body) },
          error: null,
        }),
      );
    });
    if (output.length > 0)
      batch.outputFileId = storeFile(`${batch.id}_output.jsonl`, "batch_output", encode(output)).id;
    if (errors.length > 0)
      batch.errorFileId = storeFile(`${batch.id}_error.jsonl`, "batch_output", encode(errors)).id;
  }

  function advance(batch: FakeOpenAIBatch) {
    if (batch.status === "cancelling") {
      finish(batch, 0, "batch_cancelled");
      batch.status = "cancelled";
      return;
    }
    if (batch.status !== "validating" && batch.status !== "in_progress") return;
    if (batch.outcome.status === "failed") {
      batch.status = "failed";
      batch.errors = {
        object: "list",
        data: [
          {
            code: "invalid_request",
            message: batch.outcome.message ?? "the input file is invalid",
            line: null,
            param: null,
          },
        ],
      };
      return;
    }
    batch.polls += 1;
    if (batch.polls <= pollsUntilEnd) {
      batch.status = "in_progress";
      return;
    }
    if (batch.outcome.status === "expired") {
      finish(batch, batch.outcome.ran ?? Math.floor(batch.requests.length / 2), "batch_expired");
      batch.status = "expired";
      return;
    }
    finish(batch, batch.requests.length, undefined);
    batch.status = "completed";
  }

  function handle(request: RecordedRequest): Answer | undefined {
    const { method, path } = request;
    if (method === "POST" && path === "/v1/files") {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const file = body.file as RecordedFile | undefined;
      if (file === undefined || body.purpose === undefined) return invalid("file and purpose are required");
      return { body: fileObject(storeFile(file.filename, String(body.purpose), file.bytes)) };
    }
    const content = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (method === "GET" && content !== null) {
      const file = files.get(content[1] ?? "");
      if (file === undefined) return notFound(`No such File object: ${content[1]}`);
      return { body: Buffer.from(file.bytes).toString("utf8") };
    }
    if (method === "POST" && path === "/v1/batches") {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const input = files.get(String(body.input_file_id));
      if (input === undefined) return invalid(`No such File object: ${String(body.input_file_id)}`);
      if (body.endpoint !== "/v1/chat/completions") return invalid("endpoint must be /v1/chat/completions");
      if (body.completion_window !== "24h") return invalid("completion_window must be 24h");
      const requests = Buffer.from(input.bytes)
        .toString("utf8")
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as { custom_id: string; body: Record<string, unknown> });
      const batch: FakeOpenAIBatch = {
        id: `batch_${randomBytes(12).toString("hex")}`,
        status: "validating",
        inputFileId: input.id,
        requests,
        outcome,
        polls: 0,
        createdAt: now(),
        metadata: body.metadata,
        counts: { total: requests.length, completed: 0, failed: 0 },
      };
      batches.set(batch.id, batch);
      return { body: batchObject(batch) };
    }
    if (method === "GET" && path === "/v1/batches") {
      // Newest first, `after` a batch id and `limit` (default 20), as OpenAI's list.
      const all = [...batches.values()].reverse();
      const after = request.query.after;
      const start = after === undefined ? 0 : all.findIndex((batch) => batch.id === after) + 1;
      const limit = Number(request.query.limit ?? 20);
      const page = all.slice(start, start + limit);
      return {
        body: {
          object: "list",
          data: page.map(batchObject),
          first_id: page[0]?.id ?? null,
          last_id: page.at(-1)?.id ?? null,
          has_more: start + limit < all.length,
        },
      };
    }
    const batchPath = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (batchPath !== null) {
      const batch = batches.get(batchPath[1] ?? "");
      if (batch === undefined) return notFound(`No batch found with id '${batchPath[1]}'.`);
      if (method === "GET" && batchPath[2] === undefined) {
        advance(batch);
        return { body: batchObject(batch) };
      }
      if (method === "POST" && batchPath[2] === "/cancel") {
        if (batch.status === "validating" || batch.status === "in_progress" || batch.status === "finalizing")
          batch.status = "cancelling";
        else if (batch.status !== "cancelling" && batch.status !== "cancelled")
          return { status: 409, body: openAIError(`Cannot cancel a batch with status '${batch.status}'.`) };
        return { body: batchObject(batch) };
      }
    }
    return undefined;
  }

  return {
    control: {
      batches,
      setOutcome(next) {
        outcome = next;
      },
      setRequestOutcome(decide) {
        requestOutcome = decide;
      },
      setPollsUntilEnd(polls) {
        pollsUntilEnd = polls;
      },
    },
    handle,
  };
}

function encode(lines: string[]): Uint8Array {
  return new TextEncoder().encode(`${lines.join("\n")}\n`);
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

function openAIError(message: string) {
  return { error: { message, type: "invalid_request_error", param: null, code: null } };
}

function invalid(message: string): Answer {
  return { status: 400, body: openAIError(message) };
}

function notFound(message: string): Answer {
  return { status: 404, body: openAIError(message) };
}
