import { parseArgs } from "node:util";
import { CommonEnv, describeStartupError, parseEnv } from "@genq/core";
import {
  AccountRepository,
  assertDatabaseReachable,
  createPrismaClient,
  ensureDatabaseExists,
  migrate,
  PLANS,
  type Plan,
} from "@genq/db";
import { apiKeyInvalidationChannel } from "@genq/queue";
import { Redis } from "ioredis";
import { startSystem } from "./start-system.ts";

const USAGE = `Usage: pnpm genq-admin <command>   (the operator CLI; the user CLI is \`genq\`, from @genq/client)

Commands:
  start                               migrate, then run the API and one worker (what \`pnpm start\` does)
  migrate                             apply pending database migrations
  users create <email> [--plan P] [--key-only]
                                      create a user (plans: ${PLANS.join(", ")}; default basic) and print its API key once
                                      (--key-only prints just the key, for scripts)
  users show <id|email>               show a user
  keys create <user id|email> [--name N]  create another API key and print it once
  keys list <user id|email>           list a user's keys (prefixes only)
  keys revoke <key id|prefix>         revoke a key

Environment: DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/genq), REDIS_URL.`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      plan: { type: "string" },
      name: { type: "string" },
      "key-only": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, sub, argument] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const env = parseEnv(CommonEnv, process.env);
  if (command === "start") return startSystem(env);
  if (command === "migrate") {
    await assertDatabaseReachable(env.DATABASE_URL).catch(async (error: unknown) => {
      // A missing database (not a missing server) is created, so a fresh server just works.
      if (!(await ensureDatabaseExists(env.DATABASE_URL).catch(() => false))) throw error;
    });
    const result = await migrate({ connectionString: env.DATABASE_URL });
    process.stdout.write(
      result.applied.length === 0
        ? `Database is up to date (${result.alreadyApplied.length} migrations applied before).\n`
        : `Applied ${result.applied.length} migration(s): ${result.applied.join(", ")}\n`,
    );
    return 0;
  }

  const db = createPrismaClient({ connectionString: env.DATABASE_URL, maxConnections: 2 });
  const accounts = new AccountRepository({ db });
  try {
    if (command === "users" && sub === "create" && argument !== undefined) {
      const plan = (values.plan ?? "basic") as Plan;
      if (!PLANS.includes(plan)) throw new UsageError(`--plan must be one of ${PLANS.join(", ")}`);
      if (!/^[^@\s]+@[^@\s]+$/.test(argument)) throw new UsageError(`"${argument}" is not an email address`);
      const { user, apiKey } = await accounts.createUser({ email: argument, plan });
      if (values["key-only"]) {
        process.stdout.write(`${apiKey}\n`);
        return 0;
      }
      process.stdout.write(
        `Created user ${user.email} (plan ${user.plan})\nuser id: ${user.id}\napi key: ${apiKey}\n` +
          "Keep the API key now: it is shown only once.\n",
      );
      return 0;
    }
    if (command === "users" && sub === "show" && argument !== undefined) {
      const user = await requireUser(accounts, argument);
      process.stdout.write(`${JSON.stringify(user, null, 2)}\n`);
      return 0;
    }
    if (command === "keys" && sub === "create" && argument !== undefined) {
      const user = await requireUser(accounts, argument);
      const { apiKey, key } = await accounts.createApiKey({
        userId: user.id,
        ...(values.name === undefined ? {} : { name: values.name }),
      });
      process.stdout.write(
        `key id: ${key.id}\nprefix: ${key.prefix}\napi key: ${apiKey}\nKeep the API key now: it is shown only once.\n`,
      );
      return 0;
    }
    if (command === "keys" && sub === "list" && argument !== undefined) {
      const user = await requireUser(accounts, argument);
      for (const key of await accounts.listApiKeys(user.id)) {
        process.stdout.write(
          `${key.prefix}  id=${key.id}  name=${key.name ?? "-"}  created=${key.createdAt.toISOString()}  ${key.revokedAt === null ? "active" : `revoked=${key.revokedAt.toISOString()}`}\n`,
        );
      }
      return 0;
    }
    if (command === "keys" && sub === "revoke" && argument !== undefined) {
      const key = await accounts.revokeApiKey(argument);
      if (key === null) throw new UsageError(`no key with id or prefix ${argument}`);
      process.stdout.write(`Revoked ${key.prefix} (id ${key.id})\n`);
      // API processes cache resolved keys; tell them all to forget this one now.
      const announced = await announceRevocation(env.REDIS_URL, env.GENQ_QUEUE_PREFIX, key.id);
      if (!announced)
        process.stderr.write(
          "Could not reach Redis to tell the API processes; they stop accepting the key within GENQ_API_KEY_CACHE_TTL_MS.\n",
        );
      return 0;
    }
    throw new UsageError(`unknown command: ${positionals.join(" ")}\n\n${USAGE}`);
  } finally {
    await db.$disconnect();
  }
}

/** Publishes a key revocation to every API process's key cache; false when Redis could not be reached. */
async function announceRevocation(redisUrl: string, prefix: string, apiKeyId: string): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3_000 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.publish(apiKeyInvalidationChannel(prefix), JSON.stringify({ apiKeyId }));
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function requireUser(accounts: AccountRepository, idOrEmail: string) {
  const user = await accounts.findUser(idOrEmail);
  if (user === null) throw new UsageError(`no user ${idOrEmail}`);
  return user;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // `pnpm start` runs this file too; its problems are genq's, the other commands' genq-admin's.
    const name = process.argv[2] === "start" ? "genq" : "genq-admin";
    const lines = error instanceof UsageError ? [error.message] : describeStartupError(error);
    for (const line of lines) process.stderr.write(`${name}: ${line}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
