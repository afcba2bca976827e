import {
  BooleanFromString,
  CommonEnv,
  checkStorageEnv,
  EncryptionKeysVariable,
  parseEnv,
  StorageEnv,
} from "@genq/core";
import { PlansFromJson } from "@genq/quota";
import { parseRetrySchedule, parseWebhookAllowlist } from "@genq/webhooks";
import { z } from "zod";

const WebhookRetrySchedule = z.string().transform((value, context) => {
  try {
    return parseRetrySchedule(value);
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const WebhookAllowedHosts = z.string().transform((value, context) => {
  try {
    return parseWebhookAllowlist(value);
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const QueueList = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== ""),
  )
  .pipe(
    z
      .array(z.enum(["text", "image", "webhook"], { error: "queues are text, image and webhook" }))
      .min(1, "name at least one queue"),
  );

/** The worker's configuration, from environment variables. */
export const WorkerEnv = CommonEnv.extend({
  ...StorageEnv.shape,
  /** Which queues this process runs, comma-separated. */
  GENQ_WORKER_QUEUES: QueueList.default(["text", "image", "webhook"]),
  /** Plan limits as JSON, laid over the defaults: {"basic":{"textTokens":200000,"images":50}}. */
  GENQ_PLANS: PlansFromJson.optional(),
  /** Encryption keys of users' own provider keys (the API's value); unset: jobs use system keys only. */
  GENQ_ENCRYPTION_KEYS: EncryptionKeysVariable.optional(),
  /** How often housekeeping (asset and data retention) runs. */
  GENQ_MAINTENANCE_INTERVAL_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(3_600_000),
  /**
   * Data retention, in days (0 keeps forever): finished jobs, with their provider calls,
   * stored images and finished batches. Usage records (the billing history) are kept.
   */
  GENQ_RETENTION_JOBS_DAYS: z.coerce.number().int().min(0).max(36_500).default(90),
  /** Data retention: provider calls (the operators' call log), in days; 0 keeps them as long as their job. */
  GENQ_RETENTION_PROVIDER_CALLS_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /** Data retention: webhook messages no longer pending, with their delivery logs, in days; 0 keeps forever. */
  GENQ_RETENTION_WEBHOOK_MESSAGES_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /** Data retention: uploaded images no unfinished job names, in days; 0 keeps forever. */
  GENQ_RETENTION_UPLOADS_DAYS: z.coerce.number().int().min(0).max(36_500).default(7),
  GENQ_TEXT_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(32),
  GENQ_IMAGE_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(4),
  GENQ_ATTEMPT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  GENQ_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  GENQ_LOCK_DURATION_MS: z.coerce.number().int().min(500).max(600_000).default(30_000),
  GENQ_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).max(600_000).default(30_000),
  GENQ_MAX_STALLED_COUNT: z.coerce.number().int().min(0).max(100).default(2),
  GENQ_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(500).max(3_600_000).default(15_000),
  /** Live events (SSE): about this many entries are kept per job or batch stream. */
  GENQ_EVENTS_MAX_LENGTH: z.coerce.number().int().min(10).max(1_000_000).default(1_000),
  /** Live events (SSE): a stream expires this long after its last event. */
  GENQ_EVENTS_RETENTION_MS: z.coerce.number().int().min(1_000).max(604_800_000).default(3_600_000),
  /** Live events (SSE): a stream expires this long after its terminal event (at most the retention). */
  GENQ_EVENTS_FINISHED_RETENTION_MS: z.coerce.number().int().min(1_000).max(604_800_000).default(300_000),
  /**
   * Batch items of one user (basic plan) that may be queued in BullMQ or running at a time;
   * professional gets 2×, enterprise 4×. Later jobs wait behind at most this many batch items.
   */
  GENQ_BATCH_TENANT_CAP: z.coerce.number().int().min(1).max(1_000_000).default(64),
  /**
   * The most jobs (single jobs and batch items) one `basic` user may have running at
   * once over every worker; professional gets 2×, enterprise 4×. Jobs past it wait
   * (parked, no attempt spent) until one of the user's jobs stops. 0 turns the cap off.
   */
  GENQ_TENANT_CONCURRENCY: z.coerce.number().int().min(0).max(1_000_000).default(16),
  /**
   * How long a job may keep waiting for its providers (every candidate rate limited or
   * its circuit open), counted from its first postponement; then it fails `provider_unavailable`.
   */
  GENQ_JOB_POSTPONE_DEADLINE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(7 * 86_400_000)
    .default(1_800_000),
  /** How often the fair dispatcher releases batch items (it also runs when items finish). */
  GENQ_BATCH_DISPATCH_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(200),
  /**
   * Economy batches whose provider batch expired or was refused: `online` runs the
   * items it did not run through the queues (online prices), `fail` fails them.
   */
  GENQ_ECONOMY_FALLBACK: z.enum(["online", "fail"]).default("online"),
  /** How often the economy scheduler submits economy items and looks for provider batches due a poll. */
  GENQ_ECONOMY_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** The first wait between polls of a provider batch; it doubles per poll up to the maximum. */
  GENQ_ECONOMY_POLL_BASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** The longest wait between two polls of a provider batch. */
  GENQ_ECONOMY_POLL_MAX_MS: z.coerce.number().int().min(100).max(3_600_000).default(600_000),
  /** Webhook deliveries at once in this process (the `webhook` queue). */
  GENQ_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(16),
  /**
   * Webhook deliveries of one user at once, across all workers; keep it below the total
   * concurrency, so a user whose endpoints never answer leaves slots to the others.
   */
  GENQ_WEBHOOK_TENANT_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(8),
  /** Webhook deliveries to one endpoint (or per-request URL host) at once, across all workers. */
  GENQ_WEBHOOK_ENDPOINT_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(4),
  /**
   * An endpoint whose attempts all failed for this long (no delivery in between) is disabled,
   * and its owner gets `webhook_endpoint.disabled` on the other endpoints. Default 5 days.
   */
  GENQ_WEBHOOK_DISABLE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(90 * 86_400_000)
    .default(432_000_000),
  /** A webhook delivery attempt (resolve, connect, answer) must end within this. */
  GENQ_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  /** Delays before each webhook attempt, comma-separated ms; default 0,5s,5min,30min,2h,5h,10h,10h. */
  GENQ_WEBHOOK_RETRY_SCHEDULE_MS: WebhookRetrySchedule.optional(),
  /** Hostnames, IPs or CIDRs webhooks may call although private or loopback (development, tests). */
  GENQ_WEBHOOK_ALLOWED_HOSTS: WebhookAllowedHosts.optional(),
  /** How often the webhook relay queues outbox messages Redis does not hold (e.g. after Redis lost its data). */
  GENQ_WEBHOOK_RELAY_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** The API's public URL, for links in webhook payloads; relative links (/v1/jobs/:id) when unset. */
  GENQ_PUBLIC_URL: z.url().optional(),
  /** A providers file (YAML or JSON): providers, keys, models, prices, routes. Overrides the provider variables below. */
  GENQ_PROVIDERS_FILE: z.string().min(1).optional(),
  /**
   * How often a worker checks the version of the provider configuration stored in
   * the database, to catch a change announcement it missed (decision 0023).
   */
  GENQ_PROVIDER_CONFIG_CHECK_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** Reload the providers file when it changes (SIGHUP always reloads it). */
  GENQ_PROVIDERS_WATCH: BooleanFromString.default(false),
  GENQ_DEFAULT_PROVIDER: z.string().min(1).default("mock"),
  /** Offer the offline `mock` provider to jobs; default on, except when NODE_ENV=production. */
  GENQ_MOCK_ENABLED: BooleanFromString.optional(),
  GENQ_MOCK_LATENCY_MS: z.coerce.number().int().min(0).max(600_000).default(250),
  GENQ_MOCK_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_DEFAULT_MODEL: z.string().min(1).default("gpt-4o-mini"),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.url().optional(),
  ANTHROPIC_DEFAULT_MODEL: z.string().min(1).default("claude-sonnet-4-5"),
  GEMINI_API_KEY: z.string().min(1).optional(),
  GEMINI_BASE_URL: z.url().optional(),
  GEMINI_DEFAULT_MODEL: z.string().min(1).default("gemini-2.5-flash"),
  /**
   * Without a providers file: the providers (openai, anthropic, gemini; comma-separated) on which users may
   * run jobs on their own keys (BYO). Default none. With a providers file, its `acceptsUserKeys` decides.
   */
  GENQ_BYO_PROVIDERS: z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((name) => name.trim())
        .filter((name) => name !== ""),
    )
    .pipe(
      z.array(z.enum(["openai", "anthropic", "gemini"], { error: "must list openai, anthropic or gemini" })),
    )
    .default([]),
  /** Serve repeated deterministic text requests (`temperature: 0` or `cache: true`) from the result cache. */
  GENQ_RESULT_CACHE_ENABLED: BooleanFromString.default(true),
  /** How long a cached text result is served. */
  GENQ_RESULT_CACHE_TTL_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(30 * 86_400_000)
    .default(86_400_000),
  /**
   * Serve one user's cached result to another user with the same request. Off by default:
   * a hit tells a user that someone else asked exactly that (a prompt-membership oracle).
   */
  GENQ_RESULT_CACHE_SHARED: BooleanFromString.default(false),
  /** Cached results kept in each worker's memory, in front of Redis. */
  GENQ_RESULT_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
  /** Port of the worker's /health/live, /health/ready and /metrics endpoints; 0 turns them off. */
  GENQ_WORKER_HEALTH_PORT: z.coerce.number().int().min(0).max(65_535).default(0),
  /**
   * Address the worker's health and metrics server binds. Default 127.0.0.1 (this machine
   * only); containers set 0.0.0.0 so probes and Prometheus reach it.
   */
  GENQ_WORKER_HEALTH_HOST: z.string().min(1).default("127.0.0.1"),
  /**
   * When set, the worker's `/metrics` answers only `Authorization: Bearer <token>` (the API's
   * value); health endpoints stay open for probes.
   */
  GENQ_METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /**
   * Hostnames, IPs or CIDRs provider image URLs may point at although private or loopback
   * (development, tests); by default only public addresses are downloaded.
   */
  GENQ_IMAGE_DOWNLOAD_ALLOWED_HOSTS: WebhookAllowedHosts.optional(),
  /** The largest image downloaded from a provider's image URL, in bytes (default 25 MiB). */
  GENQ_IMAGE_DOWNLOAD_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(512 * 1024 * 1024)
    .default(25 * 1024 * 1024),
  /** Downloading a provider's image URL must end within this, in milliseconds. */
  GENQ_IMAGE_DOWNLOAD_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
}).superRefine((env, context) => {
  checkStorageEnv(env, context, { signsLinks: false });
  // With a providers file, the file names the providers and the default route.
  if (env.GENQ_PROVIDERS_FILE !== undefined) return;
  const keyOf = {
    openai: ["OPENAI_API_KEY", env.OPENAI_API_KEY],
    anthropic: ["ANTHROPIC_API_KEY", env.ANTHROPIC_API_KEY],
    gemini: ["GEMINI_API_KEY", env.GEMINI_API_KEY],
  } as const;
  const required = keyOf[env.GENQ_DEFAULT_PROVIDER as keyof typeof keyOf];
  if (required !== undefined && required[1] === undefined) {
    context.addIssue({
      code: "custom",
      path: [required[0]],
      message: `is required when GENQ_DEFAULT_PROVIDER=${env.GENQ_DEFAULT_PROVIDER}`,
    });
  }
  const mockEnabled = env.GENQ_MOCK_ENABLED ?? env.NODE_ENV !== "production";
  if (env.GENQ_DEFAULT_PROVIDER === "mock" && !mockEnabled) {
    context.addIssue({
      code: "custom",
      path: ["GENQ_DEFAULT_PROVIDER"],
      message:
        "is mock, but the mock provider is off (NODE_ENV=production); set it to openai, or GENQ_MOCK_ENABLED=true",
    });
  }
  if (!["mock", "openai", "anthropic", "gemini"].includes(env.GENQ_DEFAULT_PROVIDER)) {
    context.addIssue({
      code: "custom",
      path: ["GENQ_DEFAULT_PROVIDER"],
      message: "must be mock, openai, anthropic or gemini",
    });
  }
});
export type WorkerEnv = z.infer<typeof WorkerEnv>;

/** Reads and validates the worker's environment; throws EnvError naming bad variables. */
export function loadWorkerEnv(source: Record<string, string | undefined> = process.env): WorkerEnv {
  return parseEnv(WorkerEnv, source);
}
