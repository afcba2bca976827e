import { randomBytes } from "node:crypto";
import type { RecordedRequest } from "../../testing/fake-server-support.ts";

/** How a fake Anthropic message batch ends once it has run. */
export type FakeAnthropicBatchOutcome =
  | { status: "completed" }
  /** The 24-hour window passed after the first `ran` requests (default half); the rest expire. */
  | { status: "expired"; ran?: number };

/** A request that fails inside the batch: its error type and message (`errored` result). */
export type FakeAnthropicBatchRequestOutcome = { type: string; message: string } | undefined;

/** One message batch the fake holds. */
export interface FakeAnthropicBatch {
  id: string;
  processingStatus: "in_progress" | "canceling" | "ended";
  requests: Array<{ custom_id: string; params: Record<string, unknown> }>;
  outcome: FakeAnthropicBatchOutcome;
  polls: number;
  createdAt: string;
  cancelInitiatedAt: string | null;
  endedAt: string | null;
  results?: string;
  counts: { processing: number; succeeded: number; errored: number; canceled: number; expired: number };
}

/** The fake's Message Batches state, for tests to inspect and script. */
export interface FakeAnthropicBatches {
  readonly batches: ReadonlyMap<string, FakeAnthropicBatch>;
  setOutcome(outcome: FakeAnthropicBatchOutcome): void;
  setRequestOutcome(
    decide: ((customId: string, params: unknown) => FakeAnthropicBatchRequestOutcome) | undefined,
  ): void;
  /** How many retrieves a batch stays `in_progress` before it ends. Default 1. */
  setPollsUntilEnd(polls: number): void;
}

type Answer = { status?: number; body?: unknown; headers?: Record<string, string> };

/**
 * Anthropic's Message Batches endpoints as the public API reference describes them
 * (`POST /v1/messages/batches`, `GET /v1/messages/batches/{id}`,
 * `POST /v1/messages/batches/{id}/cancel`, `GET /v1/messages/batches/{id}/results`
 * as JSONL), in memory. A batch ends at a later retrieve with `succeeded`, `errored`,
 * `canceled` or `expired` results. `answer` builds a request's message.
 */
export function createFakeAnthropicBatches(
  origin: () => string,
  answer: (params: Record<string, unknown>) => Record<string, unknown>,
): { control: FakeAnthropicBatches; handle(request: RecordedRequest): Answer | undefined } {
  const batches = new Map<string, FakeAnthropicBatch>();
  let outcome: FakeAnthropicBatchOutcome = { status: "completed" };
  let requestOutcome: ((customId: string, params: unknown) => FakeAnthropicBatchRequestOutcome) | undefined;
  let pollsUntilEnd = 1;

  function batchObject(batch: FakeAnthropicBatch) {
    return {
      id: batch.id,
      type: "message_batch",
      processing_status: batch.processingStatus,
      request_counts: batch.counts,
      ended_at: batch.endedAt,
      created_at: batch.createdAt,
      expires_at: new Date(Date.parse(batch.createdAt) + 86_400_000).toISOString(),
      archived_at: null,
      cancel_initiated_at: batch.cancelInitiatedAt,
      results_url:
        batch.processingStatus === "ended" ? `${origin()}/v1/messages/batches/${batch.id}/results` : null,
    };
  }

  function end(batch: FakeAnthropicBatch, ran: number, skipped: "canceled" | "expired") {
    const lines = batch.requests.map((request, index) => {
      if (index >= ran) {
        batch.counts[skipped] += 1;
        return { custom_id: request.custom_id, result: { type: skipped } };
      }
      const failure = requestOutcome?.(request.custom_id, request.params);
      if (failure !== undefined) {
        batch.counts.errored += 1;
        return {
          custom_id: request.custom_id,
          result: {
            type: "errored",
            error: { type: "error", error: { type: failure.type, message: failure.message } },
          },
        };
      }
      batch.counts.succeeded += 1;
      return { custom_id: request.custom_id, result: { type: "succeeded", message: answer(request.params) } };
    });
    batch.counts.processing = 0;
    batch.results = `${lines.map((line) => JSON.stringify(line)).join("\n")}\n`;
    batch.processingStatus = "ended";
    batch.endedAt = new Date().toISOString();
  }

  function advance(batch: FakeAnthropicBatch) {
    if (batch.processingStatus === "canceling") {
      end(batch, 0, "canceled");
      return;
    }
    if (batch.processingStatus !== "in_progress") return;
    batch.polls += 1;
    if (batch.polls <= pollsUntilEnd) return;
    if (batch.outcome.status === "expired")
      end(batch, batch.outcome.ran ?? Math.floor(batch.requests.length / 2), "expired");
    else end(batch, batch.requests.length, "expired");
  }

  function handle(request: RecordedRequest): Answer | undefined {
    const { method, path } = request;
    if (method === "POST" && path === "/v1/messages/batches") {
      const body = (request.body ?? {}) as { requests?: FakeAnthropicBatch["requests"] };
      const requests = body.requests ?? [];
      if (requests.length === 0) return invalid("requests: List should have at least 1 item");
      const ids = new Set(requests.map((item) => item.custom_id));
      if (ids.size !== requests.length) return invalid("requests: custom_id values must be unique");
      if (requests.some((item) => !/^[a-zA-Z0-9_-]{1,64}$/.test(item.custom_id)))
        return invalid("requests: custom_id must match ^[a-zA-Z0-9_-]{1,64}$");
      const batch: FakeAnthropicBatch = {
        id: `msgbatch_01${randomBytes(12).toString("hex")}`,
        processingStatus: "in_progress",
        requests,
        outcome,
        polls: 0,
        createdAt: new Date().toISOString(),
        cancelInitiatedAt: null,
        endedAt: null,
        counts: { processing: requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      };
      batches.set(batch.id, batch);
      return { body: batchObject(batch) };
    }
    const match = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(path);
    if (match === null) return undefined;
    const batch = batches.get(match[1] ?? "");
    if (batch === undefined) return { status: 404, body: errorBody("not_found_error", "Not Found") };
    if (method === "GET" && match[2] === undefined) {
      advance(batch);
      return { body: batchObject(batch) };
    }
    if (method === "POST" && match[2] === "/cancel") {
      if (batch.processingStatus === "in_progress") {
        batch.processingStatus = "canceling";
        batch.cancelInitiatedAt = new Date().toISOString();
      }
      return { body: batchObject(batch) };
    }
    if (method === "GET" && match[2] === "/results") {
      if (batch.results === undefined) return invalid(`Batch ${batch.id} has not finished processing`);
      return { body: batch.results, headers: { "content-type": "application/binary" } };
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

function errorBody(type: string, message: string) {
  return { type: "error", error: { type, message } };
}

function invalid(message: string): Answer {
  return { status: 400, body: errorBody("invalid_request_error", message) };
}
