import type OpenAI from "openai";
import { APIError, toFile } from "openai";
import {
  PROVIDER_BATCH_TAG,
  type ProviderBatchApi,
  type ProviderBatchRequest,
  type ProviderBatchResult,
  type ProviderBatchState,
} from "../batch/provider-batch.ts";
import type { TextGenerationRequest, TextGenerationResult } from "../provider.ts";
import { ProviderError } from "../provider-error.ts";
import { mapOpenAIError } from "./map-openai-error.ts";

/** OpenAI's documented limit on requests per batch input file. */
const OPENAI_BATCH_MAX_REQUESTS = 50_000;
const ENDPOINT = "/v1/chat/completions";

/** Options for {@link createOpenAIBatchApi}. */
export interface OpenAIBatchApiOptions {
  client: OpenAI;
  /** The provider name, for errors. */
  name: string;
  /** The chat request body a request becomes (the same body the online call sends). */
  chatBody(request: Omit<TextGenerationRequest, "signal">): Record<string, unknown>;
  /** Maps one chat.completion object of the output file to a result. */
  toResult(completion: OpenAI.Chat.ChatCompletion, request: { requestId?: string }): TextGenerationResult;
}

/**
 * OpenAI's Batch API through the official SDK: the requests go up as a JSONL file
 * (`files.create`, `purpose: "batch"`), a batch is created on it (`batches.create`,
 * 24-hour window), polled (`batches.retrieve`), and its output and error files read
 * back (`files.content`). Each line's `custom_id` names the request.
 */
/** How many of the newest batches {@link ProviderBatchApi.findSubmitted} looks through. */
const FIND_SUBMITTED_SCAN = 500;

export function createOpenAIBatchApi(options: OpenAIBatchApiOptions): ProviderBatchApi {
  const { client, name } = options;

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw error instanceof ProviderError ? error : mapOpenAIError(error, name);
    }
  }

  async function* lines(fileId: string, signal: AbortSignal | undefined): AsyncGenerator<unknown> {
    const response = await call(() => client.files.content(fileId, { signal: signal ?? null }));
    const text = await response.text();
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      yield JSON.parse(line);
    }
  }

  return {
    maxRequests: OPENAI_BATCH_MAX_REQUESTS,

    async submit(requests: readonly ProviderBatchRequest[], submitOptions = {}) {
      const jsonl = requests
        .map(({ customId, request }) =>
          JSON.stringify({
            custom_id: customId,
            method: "POST",
            url: ENDPOINT,
            body: options.chatBody(request),
          }),
        )
        .join("\n");
      const signal = submitOptions.signal ?? null;
      const file = await call(async () =>
        client.files.create(
          { file: await toFile(Buffer.from(`${jsonl}\n`), "genq-batch.jsonl"), purpose: "batch" },
          { signal },
        ),
      );
      const batch = await call(() =>
        client.batches.create(
          {
            input_file_id: file.id,
            endpoint: ENDPOINT,
            completion_window: "24h",
            ...(submitOptions.metadata === undefined ? {} : { metadata: submitOptions.metadata }),
          },
          { signal },
        ),
      );
      return toState(batch);
    },

    async retrieve(id, retrieveOptions = {}) {
      return toState(
        await call(() => client.batches.retrieve(id, { signal: retrieveOptions.signal ?? null })),
      );
    },

    async cancel(id, cancelOptions = {}) {
      return toState(await call(() => client.batches.cancel(id, { signal: cancelOptions.signal ?? null })));
    },

    async findSubmitted(tag, findOptions = {}) {
      // Newest first: a cut-off submission is among the last few (the lease it ran under is minutes).
      // Every page inside `call`: a later page's failure is a ProviderError too.
      return call(async () => {
        let seen = 0;
        const page = await client.batches.list({ limit: 100 }, { signal: findOptions.signal ?? null });
        for await (const batch of page) {
          if (batch.metadata?.[PROVIDER_BATCH_TAG] === tag) return toState(batch);
          seen += 1;
          if (seen >= FIND_SUBMITTED_SCAN) return undefined;
        }
        return undefined;
      });
    },

    async *results(id, resultOptions = {}): AsyncGenerator<ProviderBatchResult> {
      const signal = resultOptions.signal;
      const batch = await call(() => client.batches.retrieve(id, { signal: signal ?? null }));
      const seen = new Set<string>();
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (fileId === undefined || fileId === null || fileId === "") continue;
        for await (const line of lines(fileId, signal)) {
          const result = toResult(line as OutputLine);
          if (result === undefined || seen.has(result.customId)) continue;
          seen.add(result.customId);
          yield result;
        }
      }
    },
  };

  /** One line of an output or error file, per OpenAI's Batch API reference. */
  function toResult(line: OutputLine): ProviderBatchResult | undefined {
    const customId = line.custom_id;
    if (typeof customId !== "string") return undefined;
    const errorCode = line.error?.code;
    if (errorCode === "batch_expired") return { customId, kind: "unfinished", reason: "expired" };
    if (errorCode === "batch_cancelled") return { customId, kind: "unfinished", reason: "canceled" };
    const response = line.response;
    if (response !== null && response !== undefined && response.status_code === 200) {
      return {
        customId,
        kind: "succeeded",
        result: options.toResult(response.body as OpenAI.Chat.ChatCompletion, {
          ...(response.request_id ? { requestId: response.request_id } : {}),
        }),
      };
    }
    if (response !== null && response !== undefined) {
      const body = response.body as { error?: { message?: string } } | undefined;
      const apiError = APIError.generate(
        response.status_code,
        body,
        body?.error?.message,
        new Headers(response.request_id ? { "x-request-id": response.request_id } : {}),
      );
      return { customId, kind: "errored", error: mapOpenAIError(apiError, name) };
    }
    return {
      customId,
      kind: "errored",
      error: new ProviderError(
        "provider_unavailable",
        `${name}: batch request failed${errorCode ? ` (${errorCode})` : ""}: ${line.error?.message ?? "no detail"}`,
        { provider: name },
      ),
    };
  }
}

interface OutputLine {
  id?: string;
  custom_id?: string;
  response?: { status_code: number; request_id?: string; body?: unknown } | null;
  error?: { code?: string; message?: string } | null;
}

function toState(batch: OpenAI.Batches.Batch): ProviderBatchState {
  switch (batch.status) {
    case "validating":
    case "in_progress":
    case "finalizing":
      return { id: batch.id, status: "running" };
    case "cancelling":
      return { id: batch.id, status: "canceling" };
    case "completed":
      return { id: batch.id, status: "ended", outcome: "completed" };
    case "expired":
      return { id: batch.id, status: "ended", outcome: "expired" };
    case "cancelled":
      return { id: batch.id, status: "ended", outcome: "canceled" };
    case "failed": {
      const message = batch.errors?.data
        ?.map((error) => error.message)
        .filter(Boolean)
        .join("; ");
      return { id: batch.id, status: "ended", outcome: "failed", ...(message ? { message } : {}) };
    }
  }
}
