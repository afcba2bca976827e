export * from "./job-queues.ts";
export * from "./provider-admin-queue.ts";
export * from "./queue-catalog.ts";
export * from "./queue-position.ts";
export * from "./redis-connection.ts";
export * from "./retry-backoff.ts";
