import { MAX_LISTED_INVALID_ITEMS } from "@genq/core";
import type { OpenAIInvalidLine } from "@genq/db";
import { jsonLines } from "../jsonl-lines.ts";
import { type CheckedRequestLine, checkRequestLine } from "./openai-request-line.ts";

/** The largest batch input file, as OpenAI documents it: 200 MB. */
export const MAX_INPUT_FILE_BYTES = 200 * 1024 * 1024;
/** The most requests in one batch input file, as OpenAI documents it. */
export const MAX_REQUESTS_PER_FILE = 50_000;
/** The longest line of an input file by default: 1 MiB. */
export const DEFAULT_INPUT_LINE_LIMIT_BYTES = 1024 * 1024;

/** A request line with its number in the file (from 1), checked. */
export interface NumberedLine {
  line: number;
  checked: CheckedRequestLine;
}

/**
 * The request lines of an input file, each checked ({@link checkRequestLine}) and
 * numbered, read as a stream (memory holds one line and the custom ids seen). Blank
 * lines are skipped but counted; a repeated `custom_id` is `duplicate_custom_id`.
 */
export async function* numberedLines(
  stream: AsyncIterable<Buffer | string>,
  options: { maxLineBytes: number; maxBytes?: number | undefined },
): AsyncIterable<NumberedLine> {
  const seen = new Set<string>();
  let line = 0;
  for await (const text of jsonLines(stream, {
    maxLineBytes: options.maxLineBytes,
    maxTotalBytes: options.maxBytes ?? MAX_INPUT_FILE_BYTES,
  })) {
    line += 1;
    if (text.trim() === "") continue;
    const checked = checkRequestLine(text);
    if (checked.valid && seen.has(checked.customId)) {
      yield {
        line,
        checked: {
          valid: false,
          customId: checked.customId,
          error: {
            code: "duplicate_custom_id",
            message:
              "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.",
            param: "custom_id",
          },
        },
      };
      continue;
    }
    if (checked.customId !== undefined) seen.add(checked.customId);
    yield { line, checked };
  }
}

/** What the check of a whole input file found. */
export interface InputFileSummary {
  /** Request lines (blank lines not counted). */
  requestCount: number;
  invalidCount: number;
  /** The first {@link MAX_LISTED_INVALID_ITEMS} problems, as a failed batch's `errors.data[]`. */
  invalidLines: OpenAIInvalidLine[];
}

/** Adds a problem to a summary (counted always, listed while the list has room). */
export function noteInvalid(summary: InputFileSummary, problem: OpenAIInvalidLine): void {
  summary.invalidCount += 1;
  if (summary.invalidLines.length < MAX_LISTED_INVALID_ITEMS) summary.invalidLines.push(problem);
}

/** The problems of the file as a whole: none, or empty, or too many requests. */
export function fileProblems(summary: InputFileSummary): OpenAIInvalidLine[] {
  if (summary.requestCount === 0) {
    return [
      {
        code: "empty_file",
        line: null,
        message: "The batch input file is empty. Please upload a file with at least one request.",
        param: null,
      },
    ];
  }
  if (summary.requestCount > MAX_REQUESTS_PER_FILE) {
    return [
      {
        code: "too_many_tasks",
        line: null,
        message: `The batch input file holds ${summary.requestCount} requests; a batch holds at most ${MAX_REQUESTS_PER_FILE}.`,
        param: null,
      },
    ];
  }
  return [];
}

/** Checks every line of an input file and sums up what it found. */
export async function summarizeInputFile(
  stream: AsyncIterable<Buffer | string>,
  options: { maxLineBytes: number; maxBytes?: number | undefined },
): Promise<InputFileSummary> {
  const summary: InputFileSummary = { requestCount: 0, invalidCount: 0, invalidLines: [] };
  for await (const { line, checked } of numberedLines(stream, options)) {
    summary.requestCount += 1;
    if (!checked.valid) noteInvalid(summary, { line, ...checked.error });
  }
  for (const problem of fileProblems(summary)) noteInvalid(summary, problem);
  return summary;
}
