import { ERROR_CODES, type ErrorCode, type FinishReason, type TextJobResult } from "@genq/core";
import type { OpenAIBatchItemRow } from "@genq/db";
import { requestErrorResponse } from "./openai-errors.ts";
import { toBatchRequestId, toCompletionId } from "./openai-ids.ts";
import { unixSeconds } from "./openai-views.ts";

/** Which of a batch's two files a line belongs to. */
export type OutputFileKind = "output" | "error";

/** How a batch ended, for the lines of requests that never ran. */
export type BatchEnding = "completed" | "cancelled" | "expired";

/** OpenAI's finish reasons; genq's `error` and `other` have no counterpart and read as `stop`. */
function finishReason(reason: FinishReason): "stop" | "length" | "content_filter" | "tool_calls" {
  return reason === "length" || reason === "content_filter" || reason === "tool_calls" ? reason : "stop";
}

function customIdOf(row: OpenAIBatchItemRow): string | null {
  const metadata = row.metadata as { custom_id?: unknown } | null;
  return typeof metadata?.custom_id === "string" ? metadata.custom_id : null;
}

function isErrorCode(code: string | null): code is ErrorCode {
  return code !== null && (ERROR_CODES as readonly string[]).includes(code);
}

/** The file a finished item's line goes to: completed ones to the output file, the rest to the error file. */
export function fileKindOf(row: Pick<OpenAIBatchItemRow, "status">): OutputFileKind {
  return row.status === "completed" ? "output" : "error";
}

/** A `chat.completion` object built from a completed item's normalized result. */
export function toChatCompletion(row: OpenAIBatchItemRow): Record<string, unknown> {
  const result = row.result as TextJobResult;
  const promptTokens = row.inputTokens ?? 0;
  const completionTokens = row.outputTokens ?? 0;
  return {
    id: toCompletionId(row.id),
    object: "chat.completion",
    created: unixSeconds(row.finishedAt ?? row.createdAt),
    model: result.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: result.text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: finishReason(result.finishReason),
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
    system_fingerprint: null,
  };
}

/**
 * One line of an output or error file, in OpenAI's format (`{id, custom_id,
 * response: {status_code, request_id, body}, error}`): a completed item answers
 * 200 with its chat completion; a failed one the HTTP status and error body genq
 * would answer for its error code (`response.body.error`, `error` null); an item
 * that never ran (the batch was cancelled or expired) has no response and
 * `error: {code: "batch_cancelled" | "batch_expired", message}`.
 */
export function toOutputLine(row: OpenAIBatchItemRow, ending: BatchEnding): string {
  const id = toBatchRequestId(row.id);
  const customId = customIdOf(row);
  if (row.status === "completed") {
    const result = row.result as TextJobResult;
    return JSON.stringify({
      id,
      custom_id: customId,
      response: {
        status_code: 200,
        request_id: result.providerRequestId ?? row.id,
        body: toChatCompletion(row),
      },
      error: null,
    });
  }
  if (row.status === "canceled" || row.status === "queued") {
    const expired = ending === "expired";
    return JSON.stringify({
      id,
      custom_id: customId,
      response: null,
      error: {
        code: expired ? "batch_expired" : "batch_cancelled",
        message: expired
          ? "This request could not be executed before the completion window expired."
          : "This request was not executed because the batch was cancelled.",
      },
    });
  }
  const code: ErrorCode = isErrorCode(row.errorCode) ? row.errorCode : "internal_error";
  const { statusCode, body } = requestErrorResponse(code, row.errorMessage ?? "the request failed");
  return JSON.stringify({
    id,
    custom_id: customId,
    response: { status_code: statusCode, request_id: row.id, body },
    error: null,
  });
}
