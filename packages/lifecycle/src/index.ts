export * from "./create-job-lifecycle.ts";
export * from "./job-lifecycle.ts";
export type { SqlClientOptions } from "./sql-client.ts";
