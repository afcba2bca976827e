import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GenqError, newId } from "@genq/core";
import {
  type OpenAIBatchRepository,
  type OpenAIFileRecord,
  type OpenAIFileRepository,
  openAIFileObjectKey,
} from "@genq/db";
import type { ObjectStorage } from "@genq/storage";
import { summarizeInputFile } from "./openai-input-file.ts";
import { type BatchEnding, fileKindOf, type OutputFileKind, toOutputLine } from "./openai-output-lines.ts";

/** Rows read per query when an output or error file is rendered. */
const RENDER_CHUNK = 1_000;
/** The longest file name kept, in characters. */
const MAX_FILENAME_LENGTH = 255;

/** An input file as the multipart body delivered it. */
export interface IncomingFile {
  stream: Readable;
  filename: string;
}

/** Options for {@link OpenAIFileService}. */
export interface OpenAIFileServiceOptions {
  files: OpenAIFileRepository;
  batches: OpenAIBatchRepository;
  storage: ObjectStorage | undefined;
  /** The longest line of an input file, in bytes. */
  maxLineBytes: number;
  /** The largest input file, in bytes. */
  maxBytes: number;
}

/**
 * Input files (bytes in object storage, checked line by line on upload) and the
 * output and error files of finished batches (rendered from the batch's items when
 * read; see docs/decisions/0021).
 */
export class OpenAIFileService {
  readonly #options: OpenAIFileServiceOptions;

  constructor(options: OpenAIFileServiceOptions) {
    this.#options = options;
  }

  /** Object storage, or a 503 saying it is needed. */
  requireStorage(): ObjectStorage {
    const { storage } = this.#options;
    if (storage === undefined) {
      throw new GenqError(
        "service_unavailable",
        "batch input files need object storage, and none is configured",
      );
    }
    return storage;
  }

  /**
   * Stores an input file: spooled to a private temporary file while it arrives,
   * checked line by line from there (what is invalid is recorded, not refused: a
   * batch of the file then fails validation, as at OpenAI), written to object
   * storage, then recorded.
   */
  async spool(file: IncomingFile): Promise<SpooledFile> {
    const directory = await mkdtemp(join(tmpdir(), "genq-openai-file-"));
    const path = join(directory, "input.jsonl");
    try {
      await pipeline(file.stream, createWriteStream(path));
      if ((file.stream as { truncated?: boolean }).truncated === true) throw this.#tooLarge();
    } catch (error) {
      await rm(directory, { recursive: true, force: true });
      if ((error as { code?: unknown }).code === "FST_REQ_FILE_TOO_LARGE") throw this.#tooLarge();
      if (GenqError.is(error)) throw error;
      throw new GenqError("invalid_request", "the multipart body could not be read", { cause: error });
    }
    return new SpooledFile(directory, path, file.filename.slice(0, MAX_FILENAME_LENGTH) || "file.jsonl");
  }

  #tooLarge(): GenqError {
    return new GenqError(
      "payload_too_large",
      `the file is larger than ${this.#options.maxBytes} bytes, the most a batch input file may hold`,
      { details: { limitBytes: this.#options.maxBytes } },
    );
  }

  /** Checks a spooled input file, stores its bytes and records it for `userId`. */
  async store(userId: string, spooled: SpooledFile): Promise<OpenAIFileRecord> {
    const storage = this.requireStorage();
    const summary = await summarizeInputFile(createReadStream(spooled.path), {
      maxLineBytes: this.#options.maxLineBytes,
      maxBytes: this.#options.maxBytes,
    });
    const id = newId();
    const key = openAIFileObjectKey(userId, id);
    // The object first: a row never points at bytes that are not there.
    const stored = await storage.put(key, createReadStream(spooled.path), {
      contentType: "application/jsonl",
    });
    return this.#options.files.create({
      id,
      userId,
      purpose: "batch",
      filename: spooled.filename,
      bytes: stored.bytes,
      key,
      lineCount: summary.requestCount,
      invalidCount: summary.invalidCount,
      invalidLines: summary.invalidLines,
    });
  }

  /** An input file's bytes, as stored. */
  async openInput(file: OpenAIFileRecord): Promise<Readable> {
    if (file.key === null) throw new GenqError("internal_error", `file ${file.id} has no stored bytes`);
    return (await this.requireStorage().get(file.key)).body;
  }

  /** A file's content: an input file's bytes, or an output or error file rendered from its batch. */
  async content(file: OpenAIFileRecord): Promise<Readable> {
    if (file.key !== null) return this.openInput(file);
    const batch =
      file.openaiBatchId === null ? null : await this.#options.batches.findById(file.openaiBatchId);
    // The genq batch is gone (data retention): so are the results the file showed.
    if (batch === null || batch.batchId === null) return Readable.from([]);
    const kind: OutputFileKind = file.id === batch.errorFileId ? "error" : "output";
    return Readable.from(this.renderLines(batch.batchId, kind, batch.status as BatchEnding));
  }

  /** A batch's items in item order, a chunk at a time. */
  async *#itemChunks(genqBatchId: string) {
    let afterIndex: number | undefined;
    for (;;) {
      const rows = await this.#options.batches.items(genqBatchId, { afterIndex, limit: RENDER_CHUNK });
      if (rows.length > 0) yield rows;
      if (rows.length < RENDER_CHUNK) return;
      afterIndex = rows.at(-1)?.itemIndex ?? undefined;
    }
  }

  /** The lines of a batch's output or error file, in item order, each ending in a newline. */
  async *renderLines(genqBatchId: string, kind: OutputFileKind, ending: BatchEnding): AsyncIterable<string> {
    for await (const rows of this.#itemChunks(genqBatchId)) {
      const lines = rows
        .filter((row) => fileKindOf(row) === kind)
        .map((row) => `${toOutputLine(row, ending)}\n`);
      if (lines.length > 0) yield lines.join("");
    }
  }

  /** The size of a batch's output and error files, counted by rendering them once (one pass over the items). */
  async measure(genqBatchId: string, ending: BatchEnding): Promise<Record<OutputFileKind, number>> {
    const sizes = { output: 0, error: 0 };
    for await (const rows of this.#itemChunks(genqBatchId)) {
      for (const row of rows) sizes[fileKindOf(row)] += Buffer.byteLength(toOutputLine(row, ending)) + 1;
    }
    return sizes;
  }

  /** Deletes the user's file: its row, then an input file's object. */
  async delete(userId: string, fileId: string): Promise<OpenAIFileRecord> {
    const file = await this.#options.files.delete(userId, fileId);
    if (file.key !== null) await this.#options.storage?.delete(file.key);
    return file;
  }
}

/** An input file spooled to a private temporary directory; `close()` removes it. */
export class SpooledFile {
  constructor(
    readonly directory: string,
    readonly path: string,
    readonly filename: string,
  ) {}

  async close(): Promise<void> {
    await rm(this.directory, { recursive: true, force: true });
  }
}
