export * from "./asset-retention.ts";
export * from "./batch-dispatcher.ts";
export * from "./job-image-store.ts";
export * from "./job-processor.ts";
export * from "./maintenance.ts";
export * from "./reconciler.ts";
export * from "./tenant-gate.ts";
export * from "./worker-pool.ts";
