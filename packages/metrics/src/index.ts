export * from "./genq-metrics.ts";
