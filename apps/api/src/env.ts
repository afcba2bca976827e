import {
  BooleanFromString,
  CommonEnv,
  checkStorageEnv,
  EncryptionKeysVariable,
  parseEnv,
  StorageEnv,
} from "@genq/core";
import { PlansFromJson } from "@genq/quota";
import { parseWebhookAllowlist } from "@genq/webhooks";
import { z } from "zod";

/** The API's configuration, from environment variables. */
export const ApiEnv = CommonEnv.extend({
  ...StorageEnv.shape,
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  /** Base URL used in `links` (e.g. https://genq.example.com); relative links when unset. */
  GENQ_PUBLIC_URL: z.url().optional(),
  GENQ_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(100 * 1024 * 1024)
    .default(1024 * 1024),
  GENQ_ADMIN_USER: z.string().min(1).default("admin"),
  GENQ_ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters").optional(),
  /** Failed operator logins (Basic auth) one client IP may make per window; then 429 with Retry-After. */
  GENQ_ADMIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).max(1_000_000).default(10),
  /**
   * Failed operator logins one user name may collect per window from all IPs; then IPs that
   * have failed before get 429 (a client with a clean record still gets in with the right password).
   */
  GENQ_ADMIN_MAX_FAILURES_PER_USER: z.coerce.number().int().min(1).max(1_000_000).default(100),
  /** The window of the failed-login limits, in milliseconds (default 15 minutes). */
  GENQ_ADMIN_FAILURE_WINDOW_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(900_000),
  /**
   * A bearer token Prometheus sends to read `/metrics` (`Authorization: Bearer <token>`); the
   * operator's Basic credentials always work too. Unset: Basic only. Set the workers' value alike.
   */
  GENQ_METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  GENQ_DOCS_ENABLED: BooleanFromString.default(true),
  /** Submissions (POST /v1/jobs, cancels) per API key per minute, shared by all API processes; 0 turns it off. */
  GENQ_SUBMIT_RATE_LIMIT: z.coerce.number().int().min(0).max(1_000_000).default(600),
  /**
   * How long an API process trusts a resolved API key without asking Postgres (ms); revoking a key
   * or changing its user through the admin API evicts it everywhere at once. 0 turns the cache off.
   */
  GENQ_API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(30_000),
  GENQ_TRUST_PROXY: BooleanFromString.default(false),
  /** The largest image `POST /v1/uploads` accepts, in bytes (default 20 MiB); larger ones get 413. */
  GENQ_UPLOAD_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    // The route holds a file in memory while it checks and stores it.
    .max(100 * 1024 * 1024)
    .default(20 * 1024 * 1024),
  /** The largest JSONL `POST /v1/batches` body (streamed to a temporary file) in bytes (default 64 MiB). */
  GENQ_BATCH_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  /** The largest JSON `POST /v1/batches` body in bytes (parsed in memory; default 16 MiB); bigger batches go as JSONL. */
  GENQ_BATCH_JSON_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  /** The longest line (one item) of a JSONL batch body in bytes (default 1 MiB); a longer one gets 413. */
  GENQ_BATCH_LINE_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** Batch uploads one user may have in progress at once, over every API process (default 2); more get 429. */
  GENQ_BATCH_UPLOADS_PER_USER: z.coerce.number().int().min(1).max(1_000).default(2),
  /**
   * Other writes under /v1 (POST, PUT, PATCH, DELETE: uploads, webhook endpoints, redeliveries, provider keys)
   * per API key per minute, shared by all API processes (default 120); 0 turns it off. Submissions have
   * their own limit, GENQ_SUBMIT_RATE_LIMIT.
   */
  GENQ_WRITE_RATE_LIMIT: z.coerce.number().int().min(0).max(1_000_000).default(120),
  /**
   * How long a request waits for a database connection from the pool (ms, default 5000); past it the request
   * gets 503 with Retry-After instead of hanging. 0 waits forever.
   */
  GENQ_DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /** Live events (SSE): a `: keep-alive` comment after this long without events. */
  GENQ_SSE_HEARTBEAT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
  /** Live event streams one API process serves at once (each holds a Redis connection); more get 503. */
  GENQ_SSE_MAX_STREAMS: z.coerce.number().int().min(1).max(100_000).default(1_000),
  /**
   * Live event streams one user may hold open across every API process (counted in Redis;
   * a crashed process's streams stop counting within a minute); more get 429 `rate_limited`.
   */
  GENQ_SSE_MAX_STREAMS_PER_USER: z.coerce.number().int().min(1).max(100_000).default(20),
  /**
   * `Prefer: wait` on `POST /v1/jobs`: waits one API process holds at once (each holds a Redis
   * connection); beyond it the preference is not honoured (the request answers at once).
   */
  GENQ_WAIT_MAX: z.coerce.number().int().min(1).max(100_000).default(500),
  /** `Prefer: wait`: waits one user may hold at once across every API process (counted in Redis). */
  GENQ_WAIT_MAX_PER_USER: z.coerce.number().int().min(1).max(100_000).default(10),
  /**
   * The tier OpenAI-compatible batches (`completion_window: "24h"`, the only window OpenAI has) run on:
   * `online` (default; they finish in minutes) or `economy` (the providers' batch APIs at their batch
   * price; docs/batches.md).
   */
  GENQ_OPENAI_BATCH_TIER: z.enum(["online", "economy"]).default("online"),
  /** Live events: about this many entries are kept per job or batch stream (as the workers'). */
  GENQ_EVENTS_MAX_LENGTH: z.coerce.number().int().min(10).max(1_000_000).default(1_000),
  /** Live events: a stream expires this long after its last event (as the workers'). */
  GENQ_EVENTS_RETENTION_MS: z.coerce.number().int().min(1_000).max(604_800_000).default(3_600_000),
  /** Live events: a stream expires this long after its terminal event (as the workers'). */
  GENQ_EVENTS_FINISHED_RETENTION_MS: z.coerce.number().int().min(1_000).max(604_800_000).default(300_000),
  /**
   * Hostnames, IPs or CIDRs webhook URLs may name although private or loopback (development, tests);
   * set it like the workers' value.
   */
  GENQ_WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .transform((value, context) => {
      try {
        return parseWebhookAllowlist(value);
      } catch (error) {
        context.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /** The most webhook endpoints one user may have; creating another answers 409 `conflict`. */
  GENQ_WEBHOOK_MAX_ENDPOINTS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(20),
  /** Plan limits as JSON, laid over the defaults (must match the workers'). */
  GENQ_PLANS: PlansFromJson.optional(),
  /**
   * Encryption keys of users' own provider keys: `id:<base64 of 32 bytes>`, comma-separated,
   * the first one current (`openssl rand -base64 32`). Unset: /v1/provider-keys answers 503.
   */
  GENQ_ENCRYPTION_KEYS: EncryptionKeysVariable.optional(),
}).superRefine((env, context) => {
  checkStorageEnv(env, context, { signsLinks: true });
  if (env.NODE_ENV === "production" && env.GENQ_ADMIN_PASSWORD === undefined) {
    context.addIssue({
      code: "custom",
      path: ["GENQ_ADMIN_PASSWORD"],
      message: "is required when NODE_ENV=production (it protects Bull Board at /admin/queues)",
    });
  }
});
export type ApiEnv = z.infer<typeof ApiEnv>;

/** Reads and validates the API's environment; throws EnvError naming bad variables. */
export function loadApiEnv(source: Record<string, string | undefined> = process.env): ApiEnv {
  return parseEnv(ApiEnv, source);
}
