export * from "./month-end-projection.ts";
export * from "./plans.ts";
export * from "./quota-exceeded-error.ts";
export * from "./quota-kind.ts";
export * from "./quota-ledger.ts";
export * from "./quota-period.ts";
export * from "./usage-summary.ts";
