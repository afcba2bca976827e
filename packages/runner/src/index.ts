export * from "./job-processor.ts";
export * from "./reconciler.ts";
export * from "./worker-pool.ts";
