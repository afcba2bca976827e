import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type CheckedBatchItem, type InvalidBatchItem, MAX_LISTED_INVALID_ITEMS, newId } from "@genq/core";

/** Options for {@link BatchItemSpool.create}. */
export interface BatchItemSpoolOptions {
  /**
   * Where the spool file is written.
   * @defaultValue the operating system's temporary directory
   */
  directory?: string | undefined;
}

/**
 * The checked items of a batch request, spilled to a temporary file while the
 * request is read: valid items as the rows {@link BatchRepository.create} inserts
 * (one JSON row per line), invalid ones counted, the first
 * {@link MAX_LISTED_INVALID_ITEMS} listed. The request is then read to its end
 * before any transaction starts, so a slow client holds a file, not a database
 * connection, and memory stays flat whatever the batch's size. `close()` removes it.
 */
export class BatchItemSpool {
  readonly #directory: string;
  readonly #path: string;
  readonly #out: WriteStream;
  #finished = false;
  /** Valid items written. */
  validCount = 0;
  /** Items refused (exact). */
  invalidCount = 0;
  /** The first refused items, by index. */
  readonly invalidItems: InvalidBatchItem[] = [];

  private constructor(directory: string) {
    this.#directory = directory;
    this.#path = join(directory, "items.jsonl");
    this.#out = createWriteStream(this.#path);
    // Write errors reach `add` and `finish` (their `once` rejects); this keeps them from crashing the process.
    this.#out.on("error", () => {});
  }

  /** Creates an empty spool in a new private directory. */
  static async create(options: BatchItemSpoolOptions = {}): Promise<BatchItemSpool> {
    return new BatchItemSpool(await mkdtemp(join(options.directory ?? tmpdir(), "genq-batch-")));
  }

  /**
   * Spools checked items (valid ones stored, invalid ones counted), reading them to
   * the end. The caller closes the spool; it is closed here when reading fails.
   */
  static async fromItems(
    items: AsyncIterable<CheckedBatchItem>,
    options: BatchItemSpoolOptions = {},
  ): Promise<BatchItemSpool> {
    const spool = await BatchItemSpool.create(options);
    try {
      for await (const item of items) {
        if (item.valid)
          await spool.add(item.index, item.input, { model: item.model, metadata: item.metadata });
        else spool.refuse({ index: item.index, message: item.message });
      }
      await spool.finish();
      return spool;
    } catch (error) {
      await spool.close();
      throw error;
    }
  }

  /**
   * Appends a valid item (waiting while the file's buffer is full). `own.model` and
   * `own.metadata` are the item's own (OpenAI batch lines each name their model);
   * without them the item takes the batch's model and has no metadata.
   */
  async add(
    index: number,
    input: unknown,
    own: { model?: string | undefined; metadata?: Record<string, unknown> | undefined } = {},
  ): Promise<void> {
    this.validCount += 1;
    const model = own.model === undefined ? "" : `,"model":${JSON.stringify(own.model)}`;
    const metadata = own.metadata === undefined ? "" : `,"metadata":${JSON.stringify(own.metadata)}`;
    const row = `{"id":"${newId()}","item_index":${index},"input":${JSON.stringify(input)}${model}${metadata}}\n`;
    // `once` rejects when the stream fails meanwhile (a full disk).
    if (!this.#out.write(row)) await once(this.#out, "drain");
  }

  /** Counts a refused item. */
  refuse(item: InvalidBatchItem): void {
    this.invalidCount += 1;
    if (this.invalidItems.length < MAX_LISTED_INVALID_ITEMS) this.invalidItems.push(item);
  }

  /** Flushes the file; call once every item was added, before {@link BatchItemSpool.chunks}. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#out.end();
    if (!this.#out.writableFinished) await once(this.#out, "finish");
  }

  /**
   * The valid rows in item order, as JSON arrays of at most `maxRows` rows and
   * about `maxBytes` characters (a single longer row makes a chunk of its own).
   */
  async *chunks(limits: { maxRows: number; maxBytes: number }): AsyncIterable<string> {
    await this.finish();
    const lines = createInterface({
      input: createReadStream(this.#path),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    let chunk: string[] = [];
    let bytes = 0;
    for await (const line of lines) {
      if (chunk.length > 0 && (chunk.length >= limits.maxRows || bytes + line.length > limits.maxBytes)) {
        yield `[${chunk.join(",")}]`;
        chunk = [];
        bytes = 0;
      }
      chunk.push(line);
      bytes += line.length + 1;
    }
    if (chunk.length > 0) yield `[${chunk.join(",")}]`;
  }

  /** Removes the file. */
  async close(): Promise<void> {
    this.#out.destroy();
    await rm(this.#directory, { recursive: true, force: true });
  }
}
