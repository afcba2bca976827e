import { GenqError } from "@genq/core";
import type { QuotaKind } from "./quota-kind.ts";

/** What did not fit, as carried by {@link QuotaExceededError}. */
export interface QuotaExceededDetails {
  kind: QuotaKind;
  used: number;
  reserved: number;
  limit: number;
  requested: number;
  resetsAt: Date;
}

const COUNT = new Intl.NumberFormat("en-US");
const USD = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 2,
  maximumFractionDigits: 6,
});

function formatAmount(kind: QuotaKind, amount: number): string {
  return kind === "cost_micro_usd" ? USD.format(amount / 1_000_000) : COUNT.format(amount);
}

const WHAT: Record<QuotaKind, { name: string; needs: string; remedy: string }> = {
  text_tokens: {
    name: "text token quota",
    needs: "this job needs up to",
    remedy: "lower max_tokens, wait for the reset or move to a larger plan",
  },
  images: {
    name: "image quota",
    needs: "this job needs",
    remedy: "wait for the reset or move to a larger plan",
  },
  cost_micro_usd: {
    name: "monthly budget",
    needs: "this job may cost up to",
    remedy: "raise the monthly budget or wait for the reset",
  },
};

/**
 * A job does not fit its user's quota this month: `used + reserved + requested`
 * would exceed `limit`. Not retryable: running the job again will not make it
 * fit before `resetsAt`. The API answers it with 429 `quota_exceeded`.
 */
export class QuotaExceededError extends GenqError {
  override readonly name = "QuotaExceededError";
  readonly kind: QuotaKind;
  readonly used: number;
  readonly reserved: number;
  readonly limit: number;
  readonly requested: number;
  readonly resetsAt: Date;

  constructor(exceeded: QuotaExceededDetails) {
    const what = WHAT[exceeded.kind];
    const amount = (value: number) => formatAmount(exceeded.kind, value);
    super(
      "quota_exceeded",
      `${what.name} exceeded: ${amount(exceeded.used)} used + ${amount(exceeded.reserved)} reserved of ` +
        `${amount(exceeded.limit)} this month, and ${what.needs} ${amount(exceeded.requested)}; ` +
        `resets ${exceeded.resetsAt.toISOString()}. To continue, ${what.remedy}`,
      {
        retryable: false,
        details: {
          kind: exceeded.kind,
          used: exceeded.used,
          reserved: exceeded.reserved,
          limit: exceeded.limit,
          requested: exceeded.requested,
          resetsAt: exceeded.resetsAt.toISOString(),
        },
      },
    );
    this.kind = exceeded.kind;
    this.used = exceeded.used;
    this.reserved = exceeded.reserved;
    this.limit = exceeded.limit;
    this.requested = exceeded.requested;
    this.resetsAt = exceeded.resetsAt;
  }
}

/** True for a quota refusal, including one that crossed a process boundary as plain data. */
export function isQuotaExceededError(error: unknown): error is GenqError {
  return GenqError.is(error) && error.code === "quota_exceeded";
}
