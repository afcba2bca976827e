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
