export * from "./env.ts";
export * from "./errors.ts";
export * from "./ids.ts";
export * from "./job.ts";
export * from "./logger.ts";
export * from "./priorities.ts";
export * from "./redact-url.ts";
export * from "./text-job.ts";
