/**
 * What a quota limits, as stored in `quota_usage.kind`: text tokens (input +
 * output), generated images, and cost in micro-USD (the optional monthly budget).
 */
export const QUOTA_KINDS = ["text_tokens", "images", "cost_micro_usd"] as const;

/** One of {@link QUOTA_KINDS}. */
export type QuotaKind = (typeof QUOTA_KINDS)[number];

/**
 * Amounts of every kind, as the API of `@genq/quota` names them. Each is a
 * non-negative integer; bigint columns come back as numbers (safe up to 2^53).
 */
export interface QuotaAmounts {
  textTokens: number;
  images: number;
  costMicroUsd: number;
}

/** The {@link QuotaAmounts} field that holds each kind. */
export const AMOUNT_FIELD: Readonly<Record<QuotaKind, keyof QuotaAmounts>> = {
  text_tokens: "textTokens",
  images: "images",
  cost_micro_usd: "costMicroUsd",
};

/** What a job is charged in text tokens for a usage: input plus output tokens. */
export function chargedTextTokens(usage: { inputTokens: number; outputTokens: number }): number {
  return usage.inputTokens + usage.outputTokens;
}
