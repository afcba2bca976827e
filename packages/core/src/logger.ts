import { type Logger, type LoggerOptions, pino } from "pino";

/** Paths pino masks in every log line: credentials must never reach logs. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  "headers.authorization",
  "apiKey",
  "*.apiKey",
  "password",
  "*.password",
  "secret",
  "*.secret",
];

/**
 * Query parameters that are credentials: genq's signed asset links (`signature`),
 * S3/GCS presigned URLs (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`,
 * `X-Goog-Signature`, `X-Goog-Credential`) and bearer tokens in URLs.
 */
const SECRET_QUERY_PARAMETER =
  /([?&])(signature|sig|token|access_token|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)=[^&#]*/gi;

/**
 * A URL (absolute, or a path with a query) with the values of its credential query
 * parameters replaced by `[redacted]`; the rest (`expires`, the path) stays readable.
 */
export function redactUrlSecrets(url: string): string {
  if (!url.includes("?")) return url;
  return url.replace(SECRET_QUERY_PARAMETER, "$1$2=[redacted]");
}

/** The fields of a request pino logs (Fastify's own request serializer reads these). */
interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number | undefined } | null;
}

/**
 * Fastify's request serializer with the URL's credentials redacted: a signed link's
 * signature (the link is the credential) must not reach request logs.
 */
export function serializeRequest(request: LoggedRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url === undefined ? undefined : redactUrlSecrets(request.url),
    version: request.headers?.["accept-version"],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  name: string;
  level?: string;
  /** Human-readable output instead of JSON lines (default: when stdout is a terminal). */
  pretty?: boolean;
}

/** pino options shared by every genq process (Fastify takes these directly). */
export function loggerOptions(options: CreateLoggerOptions): LoggerOptions {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  return {
    name: options.name,
    level: options.level ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: { req: serializeRequest },
    ...(pretty
      ? {
          transport: {
            target: "pino-pretty",
            options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" },
          },
        }
      : {}),
  };
}

/** A pino logger: JSON lines, or pretty in a terminal, with secrets redacted. */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(loggerOptions(options));
}

export type { Logger };
