export * from "./account-repository.ts";
export * from "./api-key.ts";
export * from "./asset-repository.ts";
export * from "./client.ts";
export * from "./connection-url.ts";
export type { Plan } from "./generated/prisma/enums.ts";
export * from "./job-repository.ts";
export * from "./migrate.ts";
export * from "./readiness.ts";
