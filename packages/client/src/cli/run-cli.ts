import { parseArgs } from "node:util";
import { GenqClient } from "../genq-client.ts";
import {
  batchResultsCommand,
  cancelBatchCommand,
  getBatchCommand,
  submitBatchCommand,
} from "./batch-commands.ts";
import {
  type CliFlags,
  type CliIo,
  type CommandContext,
  describeFailure,
  EXIT,
  UsageError,
} from "./cli-context.ts";
import { cancelCommand, getCommand, listJobsCommand, submitCommand, watchCommand } from "./job-commands.ts";
import { usageCommand } from "./usage-command.ts";

/** The default API address, the one `pnpm start` listens on. */
export const DEFAULT_URL = "http://127.0.0.1:3000";

export const HELP = `genq: submit and follow genq jobs (the user CLI; operators use genq-admin)

Usage:
  genq submit "prompt" [--provider P] [--model M] [--priority P] [--system S]
                       [--max-tokens N] [--stream] [--webhook-url URL] [--wait [--timeout S]]
  genq watch <job id>            live events until the job ends (--batch: a batch's)
  genq get <job id>              a job; its text when completed
  genq cancel <job id>
  genq jobs ls [--status S] [--type T] [--limit N] [--cursor C]
  genq batch submit items.jsonl [--type text|image] [--priority P] [--provider P] [--model M]
                       [--webhook-url URL] [--metadata JSON] [--wait [--timeout S]]
                                 one job input per line ("-" reads stdin); progress on stderr
  genq batch results <batch id> [--status S] > out.jsonl
  genq batch get <batch id>
  genq batch cancel <batch id>
  genq usage [--group-by day|provider|model|type]

Options:
  --key KEY       API key (default: $GENQ_API_KEY)
  --url URL       API address (default: $GENQ_URL, else ${DEFAULT_URL})
  --json          machine-readable output: one JSON document (or event) per line
  --idempotency-key K   repeat a submission safely (default: a random one)

Exit status: 0 done; 1 the API refused, or the job/batch failed or was canceled;
2 bad usage or no API key; 3 the API could not be reached.
`;

const OPTIONS = {
  key: { type: "string" },
  url: { type: "string" },
  json: { type: "boolean", default: false },
  wait: { type: "boolean", default: false },
  batch: { type: "boolean", default: false },
  stream: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  provider: { type: "string" },
  model: { type: "string" },
  priority: { type: "string" },
  system: { type: "string" },
  "max-tokens": { type: "string" },
  type: { type: "string" },
  status: { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  "webhook-url": { type: "string" },
  metadata: { type: "string" },
  "idempotency-key": { type: "string" },
  timeout: { type: "string" },
  "group-by": { type: "string" },
} as const;

type Command = (context: CommandContext) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  submit: submitCommand,
  watch: watchCommand,
  get: getCommand,
  cancel: cancelCommand,
  "jobs ls": listJobsCommand,
  "jobs list": listJobsCommand,
  "batch submit": submitBatchCommand,
  "batch results": batchResultsCommand,
  "batch get": getBatchCommand,
  "batch cancel": cancelBatchCommand,
  usage: usageCommand,
};

/** Runs `genq` with `argv` (without node and the script); resolves with the exit status. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let json = argv.includes("--json");
  try {
    const { values, positionals } = parseCommandLine(argv);
    json = values.json;
    if (values.help || positionals[0] === "help") {
      io.stdout.write(HELP);
      return EXIT.ok;
    }
    const [first, second] = positionals;
    if (first === undefined) throw new UsageError("no command given");
    const twoWords = `${first} ${second ?? ""}`;
    const [name, command] =
      COMMANDS[twoWords] !== undefined ? [twoWords, COMMANDS[twoWords]] : [first, COMMANDS[first]];
    if (command === undefined) {
      throw new UsageError(
        first === "jobs" || first === "batch"
          ? `unknown command: ${twoWords.trim()}`
          : `unknown command: ${first}`,
      );
    }
    const { key, url, help: _, ...flags } = values;
    const client = new GenqClient({
      baseUrl: resolveUrl(url ?? io.env.GENQ_URL),
      apiKey: resolveKey(key ?? io.env.GENQ_API_KEY),
    });
    const args = positionals.slice(name.split(" ").length);
    return await command({ client, args, flags: flags satisfies CliFlags, io });
  } catch (error) {
    const failure = describeFailure(error);
    io.stderr.write(json ? `${JSON.stringify(failure.json)}\n` : `genq: ${failure.message}\n`);
    return failure.status;
  }
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function resolveKey(key: string | undefined): string {
  if (key === undefined || key === "") {
    throw new UsageError("no API key: pass --key or set GENQ_API_KEY");
  }
  return key;
}

function resolveUrl(url: string | undefined): string {
  const value = url === undefined || url === "" ? DEFAULT_URL : url;
  if (!/^https?:\/\/[^/]/.test(value))
    throw new UsageError(`--url / GENQ_URL must be an http(s) URL, not ${value}`);
  return value;
}
