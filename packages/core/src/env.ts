import { z } from "zod";

/** Parses "true"/"false"/"1"/"0" (z.coerce.boolean would take "false" as true). */
export const BooleanFromString = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");

/** Settings every genq process reads. Apps extend this in their own `env.ts`. */
export const CommonEnv = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: "must be a postgresql:// URL" })
    .default("postgresql://postgres@127.0.0.1:5432/genq"),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: "must be a redis:// or rediss:// URL" })
    .default("redis://127.0.0.1:6379"),
  /** PostgreSQL connections per process (the pool of the Prisma client). */
  GENQ_DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1_000).default(10),
  /**
   * The job lifecycle's hot-path SQL as named prepared statements (default true). Set
   * false behind a pooler that does not track them (PgBouncer in transaction mode
   * before 1.21, or without `max_prepared_statements`).
   */
  GENQ_DATABASE_PREPARED_STATEMENTS: BooleanFromString.default(true),
  GENQ_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '.', '_' and '-' only")
    .default("genq"),
  GENQ_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  GENQ_RETRY_BACKOFF_MS: z.coerce.number().int().min(0).max(3_600_000).default(1_000),
  /** OpenTelemetry: an OTLP/HTTP collector (`http://collector:4318`); traces go to `<url>/v1/traces`. Unset: tracing off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  /** OpenTelemetry: the full OTLP/HTTP traces URL, overriding the one derived from the endpoint. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_PRETTY: BooleanFromString.optional(),
});
export type CommonEnv = z.infer<typeof CommonEnv>;

/** One bad environment variable: its name and what is wrong with its value. */
export interface EnvIssue {
  variable: string;
  message: string;
}

/** Thrown by {@link parseEnv}; the message lists every bad variable, and `issues` holds them one by one. */
export class EnvError extends Error {
  override readonly name = "EnvError";
  readonly issues: EnvIssue[];

  constructor(issues: EnvIssue[]) {
    super(
      `Invalid configuration:\n${issues.map((issue) => `  ${issue.variable}: ${issue.message}`).join("\n")}`,
    );
    this.issues = issues;
  }
}

/**
 * Parses environment variables with `schema`, or throws an {@link EnvError}
 * naming each bad variable, its value's problem and what is expected. Empty
 * strings count as unset, so `FOO=` falls back to the default.
 */
export function parseEnv<Schema extends z.ZodType>(
  schema: Schema,
  source: Record<string, string | undefined>,
): z.infer<Schema> {
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ""),
  );
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  throw new EnvError(
    result.error.issues.map((issue) => ({
      variable: issue.path.join(".") || "(environment)",
      message: issue.message,
    })),
  );
}
