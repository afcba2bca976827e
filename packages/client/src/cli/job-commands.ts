import type { Job, JobDetail, LiveEvent, Priority } from "../types.ts";
import {
  type CommandContext,
  choiceFlag,
  EXIT,
  integerFlag,
  output,
  requireArgument,
  UsageError,
  write,
} from "./cli-context.ts";

const PRIORITIES: readonly Priority[] = ["urgent", "high", "normal", "low", "background"];
const STATUSES = ["queued", "active", "completed", "failed", "canceled"] as const;

/** The wait bound of `--timeout <seconds>` (default 10 min). */
export function waitTimeoutMs(context: CommandContext): number {
  return (integerFlag(context.flags.timeout, "timeout") ?? 600) * 1_000;
}

/** `genq submit "prompt"`: submits a text job; `--wait` waits and prints the text. */
export async function submitCommand(context: CommandContext): Promise<number> {
  const prompt = requireArgument(context, 0, "prompt");
  const { flags } = context;
  const maxTokens = integerFlag(flags["max-tokens"], "max-tokens");
  const job = await context.client.jobs.create(
    {
      type: "text",
      input: {
        prompt,
        ...(flags.system === undefined ? {} : { system: flags.system }),
        ...(maxTokens === undefined ? {} : { maxTokens }),
        ...(flags.stream ? { stream: true } : {}),
      },
      ...(flags.provider === undefined ? {} : { provider: flags.provider }),
      ...(flags.model === undefined ? {} : { model: flags.model }),
      ...(flags.priority === undefined
        ? {}
        : { priority: choiceFlag(flags.priority, "priority", PRIORITIES) }),
      ...(flags["webhook-url"] === undefined ? {} : { webhook: { url: flags["webhook-url"] } }),
    },
    flags["idempotency-key"] === undefined ? {} : { idempotencyKey: flags["idempotency-key"] },
  );
  if (!flags.wait) {
    await output(context, job.id, job);
    return EXIT.ok;
  }
  if (!flags.json && context.io.stderr.isTTY) context.io.stderr.write(`job ${job.id} ${job.status}…\n`);
  const done = await context.client.jobs.wait(job.id, { timeoutMs: waitTimeoutMs(context) });
  return printFinishedJob(context, done);
}

/** Prints a finished job: the text (or image links), or why it failed; the exit status follows it. */
async function printFinishedJob(context: CommandContext, job: JobDetail): Promise<number> {
  if (context.flags.json) {
    await output(context, "", job);
  } else if (job.status === "completed" && job.type === "text") {
    await write(context.io.stdout, `${job.result?.text ?? ""}\n`);
  } else if (job.status === "completed" && job.type === "image") {
    await write(
      context.io.stdout,
      `${(job.result?.images ?? []).map((image) => image.url ?? "(expired)").join("\n")}\n`,
    );
  }
  if (job.status === "completed") return EXIT.ok;
  const reason = job.error === null ? "" : `: ${job.error.message} [${job.error.code}]`;
  context.io.stderr.write(`job ${job.id} ${job.status}${reason}\n`);
  return EXIT.failed;
}

/** `genq get <id>`: one job (the text of a completed one, or its status). */
export async function getCommand(context: CommandContext): Promise<number> {
  const job = await context.client.jobs.get(requireArgument(context, 0, "job id"));
  if (context.flags.json) {
    await output(context, "", job);
    return EXIT.ok;
  }
  await write(context.io.stdout, `${describeJob(job)}\n`);
  if (job.status === "completed" && job.type === "text")
    await write(context.io.stdout, `${job.result?.text ?? ""}\n`);
  return EXIT.ok;
}

/** `genq cancel <id>`. */
export async function cancelCommand(context: CommandContext): Promise<number> {
  const job = await context.client.jobs.cancel(requireArgument(context, 0, "job id"));
  await output(context, describeJob(job), job);
  return EXIT.ok;
}

/** `genq jobs ls`: the newest jobs, one per line. */
export async function listJobsCommand(context: CommandContext): Promise<number> {
  const { flags } = context;
  const page = await context.client.jobs.list({
    ...(flags.status === undefined ? {} : { status: choiceFlag(flags.status, "status", STATUSES) }),
    ...(flags.type === undefined ? {} : { type: choiceFlag(flags.type, "type", ["text", "image"] as const) }),
    ...(flags.limit === undefined ? {} : { limit: integerFlag(flags.limit, "limit") }),
    ...(flags.cursor === undefined ? {} : { cursor: flags.cursor }),
  });
  if (flags.json) {
    await output(context, "", page);
    return EXIT.ok;
  }
  for (const job of page.data) await write(context.io.stdout, `${describeJob(job)}\n`);
  if (page.nextCursor !== null) context.io.stderr.write(`more: genq jobs ls --cursor ${page.nextCursor}\n`);
  return EXIT.ok;
}

function describeJob(job: Job): string {
  const route = [job.provider, job.model].filter((part) => part !== null).join("/");
  return [job.id, job.type, job.status.padEnd(9), job.priority.padEnd(10), route || "-", job.createdAt].join(
    "  ",
  );
}

/**
 * `genq watch <id>`: a job's live events as they happen (`--batch` for a batch's):
 * streamed text as it comes, other events one line each; `--json` prints one JSON event
 * per line. Exits with the job's outcome.
 */
export async function watchCommand(context: CommandContext): Promise<number> {
  const id = requireArgument(context, 0, context.flags.batch ? "batch id" : "job id");
  const { events } = context.client;
  const stream = context.flags.batch ? events.streamBatch(id) : events.stream(id);
  let midLine = false;
  let last: LiveEvent | undefined;
  for await (const event of stream) {
    last = event;
    if (context.flags.json) {
      await output(context, "", event);
      continue;
    }
    if (event.type === "job.delta") {
      await write(context.io.stdout, event.data.delta);
      midLine = !event.data.delta.endsWith("\n");
      continue;
    }
    if (midLine) await write(context.io.stdout, "\n");
    midLine = false;
    await write(context.io.stdout, `${describeEvent(event)}\n`);
  }
  if (last === undefined) throw new UsageError(`no events for ${id}`);
  return last.type === "job.completed" ||
    (last.type === "batch.completed" && last.data.status === "completed")
    ? EXIT.ok
    : EXIT.failed;
}

function describeEvent(event: LiveEvent): string {
  switch (event.type) {
    case "job.started":
      return `${event.type} attempt ${event.data.attempt}`;
    case "job.retrying":
      return `${event.type} attempt ${event.data.attempt} failed: ${event.data.error.message} [${event.data.error.code}]`;
    case "job.delayed":
      return `${event.type} every provider is busy; waiting ${event.data.delayMs} ms`;
    case "job.delta":
      return event.data.delta;
    case "job.completed":
    case "job.canceled":
      return event.type;
    case "job.failed":
      return `${event.type}${event.data.error === undefined ? "" : `: ${event.data.error.message} [${event.data.error.code}]`}`;
    case "batch.progress":
    case "batch.completed": {
      const { counts } = event.data;
      return `${event.type} ${event.data.progress}% (${counts.completed} completed, ${counts.failed} failed, ${counts.canceled} canceled of ${counts.total})`;
    }
  }
}
