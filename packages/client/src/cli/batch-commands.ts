import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import type { Batch, BatchOptions, Priority } from "../types.ts";
import {
  type CommandContext,
  choiceFlag,
  EXIT,
  output,
  requireArgument,
  UsageError,
  write,
} from "./cli-context.ts";
import { waitTimeoutMs } from "./job-commands.ts";
import { formatBytes, ProgressBar } from "./progress-bar.ts";

const PRIORITIES: readonly Priority[] = ["urgent", "high", "normal", "low", "background"];
const STATUSES = ["queued", "active", "completed", "failed", "canceled"] as const;

/**
 * `genq batch submit items.jsonl`: streams the file (one job `input` per line; `-` reads
 * stdin) as a JSONL batch, with a progress bar on stderr when it is a terminal.
 * `--wait` then follows the batch to its end.
 */
export async function submitBatchCommand(context: CommandContext): Promise<number> {
  const path = requireArgument(context, 0, "items.jsonl");
  const { flags } = context;
  const options = batchOptions(context);
  const size = path === "-" ? undefined : await fileSize(path);
  const file = path === "-" ? process.stdin : createReadStream(path);
  const bar = new ProgressBar(context.io.stderr, size ?? 0, "upload");
  let sent = 0;
  const counted = Readable.toWeb(file) as ReadableStream<Uint8Array>;
  const jsonl = counted.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.byteLength;
        if (size !== undefined) bar.update(sent, `${formatBytes(sent)} / ${formatBytes(size)}`);
        controller.enqueue(chunk);
      },
    }),
  );
  const accepted = await context.client.batches
    .create(
      { ...options, jsonl },
      {
        // A large file takes longer than one ordinary request.
        timeoutMs: 30 * 60_000,
        ...(flags["idempotency-key"] === undefined ? {} : { idempotencyKey: flags["idempotency-key"] }),
      },
    )
    .finally(() => {
      if (size !== undefined) bar.update(sent, `${formatBytes(sent)} / ${formatBytes(size)}`, true);
      bar.finish();
    });
  if (accepted.invalidCount > 0 && !flags.json) {
    context.io.stderr.write(`${accepted.invalidCount} invalid item(s), not run:\n`);
    for (const item of accepted.invalidItems.slice(0, 10)) {
      context.io.stderr.write(`  line ${item.index + 1}: ${item.message}\n`);
    }
  }
  if (!flags.wait) {
    await output(context, accepted.id, accepted);
    return EXIT.ok;
  }
  if (!flags.json) context.io.stderr.write(`batch ${accepted.id}: ${accepted.counts.total} item(s)\n`);
  const batch = await followBatch(context, accepted.id);
  await output(context, `${batch.id} ${batch.status}`, batch);
  return batch.status === "completed" ? EXIT.ok : EXIT.failed;
}

/** Waits for a batch, drawing its progress on a terminal. */
async function followBatch(context: CommandContext, id: string): Promise<Batch> {
  const bar = new ProgressBar(context.io.stderr, 100, "batch ");
  const timeoutMs = waitTimeoutMs(context);
  if (bar.enabled) {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      for await (const event of context.client.events.streamBatch(id, { signal })) {
        if (event.type !== "batch.progress" && event.type !== "batch.completed") continue;
        const { counts } = event.data;
        bar.update(
          event.data.progress,
          `${counts.completed + counts.failed + counts.canceled}/${counts.total}`,
          true,
        );
      }
    } catch {
      // The wait below polls; the bar is a nicety.
    } finally {
      bar.finish();
    }
  }
  return context.client.batches.wait(id, { timeoutMs });
}

function batchOptions(context: CommandContext): BatchOptions {
  const { flags } = context;
  let metadata: Record<string, unknown> | undefined;
  if (flags.metadata !== undefined) {
    try {
      metadata = JSON.parse(flags.metadata) as Record<string, unknown>;
    } catch {
      throw new UsageError("--metadata must be a JSON object");
    }
  }
  const type = choiceFlag(flags.type ?? "text", "type", ["text", "image"] as const) ?? "text";
  return {
    type,
    ...(flags.provider === undefined ? {} : { provider: flags.provider }),
    ...(flags.model === undefined ? {} : { model: flags.model }),
    ...(flags.priority === undefined ? {} : { priority: choiceFlag(flags.priority, "priority", PRIORITIES) }),
    ...(flags["webhook-url"] === undefined ? {} : { webhook: { url: flags["webhook-url"] } }),
    ...(metadata === undefined ? {} : { metadata }),
  };
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    throw new UsageError(`cannot read ${path}`);
  }
}

/** `genq batch results <id>`: every item's outcome as JSONL on stdout (`> out.jsonl`). */
export async function batchResultsCommand(context: CommandContext): Promise<number> {
  const id = requireArgument(context, 0, "batch id");
  const status = choiceFlag(context.flags.status, "status", STATUSES);
  for await (const item of context.client.batches.results(id, status === undefined ? {} : { status })) {
    await write(context.io.stdout, `${JSON.stringify(item)}\n`);
  }
  return EXIT.ok;
}

/** `genq batch get <id>`. */
export async function getBatchCommand(context: CommandContext): Promise<number> {
  const batch = await context.client.batches.get(requireArgument(context, 0, "batch id"));
  await output(context, describeBatch(batch), batch);
  return EXIT.ok;
}

/** `genq batch cancel <id>`. */
export async function cancelBatchCommand(context: CommandContext): Promise<number> {
  const batch = await context.client.batches.cancel(requireArgument(context, 0, "batch id"));
  await output(context, describeBatch(batch), batch);
  return EXIT.ok;
}

function describeBatch(batch: Batch): string {
  const { counts } = batch;
  return `${batch.id}  ${batch.status}  ${batch.progress}%  ${counts.completed} completed, ${counts.failed} failed, ${counts.canceled} canceled, ${counts.queued} queued of ${counts.total}`;
}
