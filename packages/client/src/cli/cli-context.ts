import { GenqError } from "../errors.ts";
import type { GenqClient } from "../genq-client.ts";

/** The process around a CLI run: its streams and environment (injectable for tests). */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean | undefined };
  stderr: NodeJS.WritableStream & { isTTY?: boolean | undefined; columns?: number | undefined };
  env: Record<string, string | undefined>;
}

/** The flags every command may read (parsed once by `runCli`). */
export interface CliFlags {
  json: boolean;
  wait: boolean;
  batch: boolean;
  provider?: string | undefined;
  model?: string | undefined;
  priority?: string | undefined;
  system?: string | undefined;
  "max-tokens"?: string | undefined;
  stream: boolean;
  type?: string | undefined;
  status?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
  "webhook-url"?: string | undefined;
  metadata?: string | undefined;
  "idempotency-key"?: string | undefined;
  timeout?: string | undefined;
  "group-by"?: string | undefined;
}

/** What a command gets: the client, its arguments and flags, and where to write. */
export interface CommandContext {
  client: GenqClient;
  args: string[];
  flags: CliFlags;
  io: CliIo;
}

/** Exit statuses of `genq`. */
export const EXIT = {
  ok: 0,
  /** The API refused the request, or the job or batch failed or was canceled. */
  failed: 1,
  /** Bad usage: unknown command or flag, missing argument, no API key. */
  usage: 2,
  /** The API could not be reached (connection refused, timeout). */
  unreachable: 3,
} as const;

/** A mistake in the command line: printed with the usage hint, exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Writes `text` and waits for the stream to drain when it is full (large results to a pipe). */
export async function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => stream.once("drain", () => resolve()));
}

/** Writes one line: JSON with `--json`, else the human text. */
export async function output(context: CommandContext, human: string, json: unknown): Promise<void> {
  await write(context.io.stdout, context.flags.json ? `${JSON.stringify(json)}\n` : `${human}\n`);
}

/** The argument at `index`, or a usage error naming it. */
export function requireArgument(context: CommandContext, index: number, name: string): string {
  const value = context.args[index];
  if (value === undefined || value === "") throw new UsageError(`missing <${name}>`);
  return value;
}

/** A positive integer flag, or a usage error naming it. */
export function integerFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${name} must be a positive integer`);
  return Number(value);
}

/** One of `allowed`, or a usage error listing them. */
export function choiceFlag<Choice extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly Choice[],
): Choice | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}`);
  }
  return value as Choice;
}

/** The exit status and the message of an error that ended a command. */
export function describeFailure(error: unknown): { status: number; message: string; json: unknown } {
  if (error instanceof UsageError) {
    return {
      status: EXIT.usage,
      message: `${error.message}\nRun \`genq --help\` for usage.`,
      json: { error: { code: "usage", message: error.message } },
    };
  }
  if (GenqError.is(error)) {
    const unreachable = error.status === 0 && (error.code === "connection_error" || error.code === "timeout");
    const where = error.status === 0 ? error.code : `${error.code}, HTTP ${error.status}`;
    const request = error.requestId === undefined ? "" : ` (request ${error.requestId})`;
    return {
      status: unreachable ? EXIT.unreachable : EXIT.failed,
      message: `${error.message} [${where}]${request}`,
      json: {
        error: {
          code: error.code,
          status: error.status,
          message: error.message,
          requestId: error.requestId ?? null,
        },
      },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { status: EXIT.failed, message, json: { error: { code: "error", message } } };
}
