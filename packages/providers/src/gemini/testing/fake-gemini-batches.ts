import { randomBytes } from "node:crypto";
import type { RecordedRequest } from "../../testing/fake-server-support.ts";

/** How a fake Gemini batch ends once it has run. */
export type FakeGeminiBatchOutcome =
  | { status: "completed" }
  /** The window passed after the first `ran` requests (default half): no responses for the rest. */
  | { status: "expired"; ran?: number }
  | { status: "failed"; message?: string };

/** A request that fails inside the batch: a Google error status (`{code, message, status}`). */
export type FakeGeminiBatchRequestOutcome = { code: number; message: string; status: string } | undefined;

/** One batch the fake holds. */
export interface FakeGeminiBatch {
  name: string;
  model: string;
  state: string;
  requests: Array<{ request: Record<string, unknown>; metadata?: { key?: string } }>;
  outcome: FakeGeminiBatchOutcome;
  polls: number;
  displayName: unknown;
  output?: unknown;
  error?: { code: number; message: string };
}

/** The fake's batch mode state, for tests to inspect and script. */
export interface FakeGeminiBatches {
  readonly batches: ReadonlyMap<string, FakeGeminiBatch>;
  setOutcome(outcome: FakeGeminiBatchOutcome): void;
  setRequestOutcome(
    decide: ((key: string, request: unknown) => FakeGeminiBatchRequestOutcome) | undefined,
  ): void;
  /** How many gets a batch stays running before it ends. Default 1. */
  setPollsUntilEnd(polls: number): void;
}

type Answer = { status?: number; body?: unknown };

const BATCH_CREATE = /^\/v1beta\/models\/([^/:]+):batchGenerateContent$/;
const BATCH_RESOURCE = /^\/v1beta\/batches\/([^/:]+)(:cancel)?$/;

/**
 * Gemini's batch mode endpoints as the public API reference describes them
 * (`POST /v1beta/models/{model}:batchGenerateContent` with inlined requests, `GET /v1beta/batches`,
 * `GET /v1beta/batches/{id}`, `POST /v1beta/batches/{id}:cancel`), in memory: the
 * batch is a long-running operation whose `metadata` carries its `state`
 * (`BATCH_STATE_*`) and, once it ended, `output.inlinedResponses`. `answer` builds
 * a request's GenerateContentResponse.
 */
export function createFakeGeminiBatches(
  answer: (model: string, request: Record<string, unknown>) => unknown,
): { control: FakeGeminiBatches; handle(request: RecordedRequest): Answer | undefined } {
  const batches = new Map<string, FakeGeminiBatch>();
  let outcome: FakeGeminiBatchOutcome = { status: "completed" };
  let requestOutcome: ((key: string, request: unknown) => FakeGeminiBatchRequestOutcome) | undefined;
  let pollsUntilEnd = 1;

  function operation(batch: FakeGeminiBatch) {
    return {
      name: batch.name,
      metadata: {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        model: `models/${batch.model}`,
        displayName: batch.displayName,
        state: batch.state,
        createTime: new Date().toISOString(),
        updateTime: new Date().toISOString(),
        ...(batch.output === undefined ? {} : { output: batch.output }),
      },
      ...(batch.error === undefined ? {} : { error: batch.error }),
      done: batch.state !== "BATCH_STATE_PENDING" && batch.state !== "BATCH_STATE_RUNNING",
    };
  }

  function end(batch: FakeGeminiBatch, ran: number, state: string) {
    const inlinedResponses = batch.requests.slice(0, ran).map((item) => {
      const key = item.metadata?.key ?? "";
      const failure = requestOutcome?.(key, item.request);
      return failure === undefined
        ? { response: answer(batch.model, item.request), metadata: { key } }
        : { error: failure, metadata: { key } };
    });
    batch.output = { inlinedResponses: { inlinedResponses } };
    batch.state = state;
  }

  function advance(batch: FakeGeminiBatch) {
    if (batch.state === "BATCH_STATE_CANCELLING") {
      end(batch, 0, "BATCH_STATE_CANCELLED");
      return;
    }
    if (batch.state !== "BATCH_STATE_PENDING" && batch.state !== "BATCH_STATE_RUNNING") return;
    if (batch.outcome.status === "failed") {
      batch.state = "BATCH_STATE_FAILED";
      batch.error = { code: 400, message: batch.outcome.message ?? "the batch is invalid" };
      return;
    }
    batch.polls += 1;
    if (batch.polls <= pollsUntilEnd) {
      batch.state = "BATCH_STATE_RUNNING";
      return;
    }
    if (batch.outcome.status === "expired")
      end(batch, batch.outcome.ran ?? Math.floor(batch.requests.length / 2), "BATCH_STATE_EXPIRED");
    else end(batch, batch.requests.length, "BATCH_STATE_SUCCEEDED");
  }

  function handle(request: RecordedRequest): Answer | undefined {
    const create = BATCH_CREATE.exec(request.path);
    if (request.method === "POST" && create?.[1] !== undefined) {
      const body = (request.body ?? {}) as {
        batch?: {
          displayName?: unknown;
          inputConfig?: { requests?: { requests?: FakeGeminiBatch["requests"] } };
        };
      };
      const requests = body.batch?.inputConfig?.requests?.requests ?? [];
      if (requests.length === 0)
        return {
          status: 400,
          body: {
            error: { code: 400, message: "batch.input_config is required", status: "INVALID_ARGUMENT" },
          },
        };
      const batch: FakeGeminiBatch = {
        name: `batches/${randomBytes(10).toString("hex")}`,
        model: decodeURIComponent(create[1]),
        state: "BATCH_STATE_PENDING",
        requests,
        outcome,
        polls: 0,
        displayName: body.batch?.displayName,
      };
      batches.set(batch.name, batch);
      return { body: operation(batch) };
    }
    if (request.method === "GET" && request.path === "/v1beta/batches") {
      // Newest first, `pageSize` (default 50) and `pageToken` (here: the offset).
      const all = [...batches.values()].reverse();
      const start = Number(request.query.pageToken ?? 0);
      const size = Number(request.query.pageSize ?? 50);
      return {
        body: {
          operations: all.slice(start, start + size).map(operation),
          ...(start + size < all.length ? { nextPageToken: String(start + size) } : {}),
        },
      };
    }
    const resource = BATCH_RESOURCE.exec(request.path);
    if (resource === null) return undefined;
    const batch = batches.get(`batches/${resource[1]}`);
    if (batch === undefined)
      return {
        status: 404,
        body: { error: { code: 404, message: "Batch not found.", status: "NOT_FOUND" } },
      };
    if (request.method === "GET" && resource[2] === undefined) {
      advance(batch);
      return { body: operation(batch) };
    }
    if (request.method === "POST" && resource[2] === ":cancel") {
      if (batch.state === "BATCH_STATE_PENDING" || batch.state === "BATCH_STATE_RUNNING")
        batch.state = "BATCH_STATE_CANCELLING";
      return { body: {} };
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
