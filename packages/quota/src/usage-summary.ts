/** How {@link UsageReport.groups} splits the totals: by UTC day, provider, model or job type. */
export type UsageGroupBy = "day" | "provider" | "model" | "type";

/** The dimensions a report can group by. */
export const USAGE_GROUP_BY: readonly UsageGroupBy[] = ["day", "provider", "model", "type"];

/** Summed usage of a set of jobs. */
export interface UsageTotals {
  jobs: number;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  images: number;
  costMicroUsd: number;
  /** What the same tokens would have cost online: economy items at online prices, others at their cost. */
  onlineCostMicroUsd: number;
  /** `onlineCostMicroUsd − costMicroUsd`: what the economy tier saved. */
  savingsMicroUsd: number;
}

/** The totals of one group; `key` is the day (`YYYY-MM-DD`), provider, model or job type. */
export interface UsageGroup extends UsageTotals {
  key: string;
}

/** A user's usage over `[from, to)`. */
export interface UsageReport {
  userId: string;
  from: Date;
  to: Date;
  groupBy: UsageGroupBy;
  totals: UsageTotals;
  /** Ordered by key. */
  groups: UsageGroup[];
}

/** One row of the report query: usage summed per (day, provider, model, type). */
export interface UsageRow {
  day: string;
  provider: string;
  model: string;
  type: string;
  jobs: number;
  input_tokens: bigint;
  cached_input_tokens: bigint;
  output_tokens: bigint;
  reasoning_tokens: bigint;
  images: bigint;
  cost_micro_usd: bigint;
  online_cost_micro_usd: bigint;
}

function emptyTotals(): UsageTotals {
  return {
    jobs: 0,
    inputTokens: 0,
    cachedInputTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    images: 0,
    costMicroUsd: 0,
    onlineCostMicroUsd: 0,
    savingsMicroUsd: 0,
  };
}

function add(totals: UsageTotals, row: UsageRow): void {
  totals.jobs += row.jobs;
  totals.inputTokens += Number(row.input_tokens);
  totals.cachedInputTokens += Number(row.cached_input_tokens);
  totals.outputTokens += Number(row.output_tokens);
  totals.reasoningTokens += Number(row.reasoning_tokens);
  totals.images += Number(row.images);
  totals.costMicroUsd += Number(row.cost_micro_usd);
  totals.onlineCostMicroUsd += Number(row.online_cost_micro_usd);
  totals.savingsMicroUsd = totals.onlineCostMicroUsd - totals.costMicroUsd;
}

/**
 * Folds the finest grouping the query returns into the totals and the groups the
 * caller asked for. One query serves every `groupBy`, and the rows are few (days
 * × providers × models × types).
 */
export function summarizeUsage(
  rows: readonly UsageRow[],
  query: { userId: string; from: Date; to: Date; groupBy: UsageGroupBy },
): UsageReport {
  const totals = emptyTotals();
  const groups = new Map<string, UsageGroup>();
  for (const row of rows) {
    add(totals, row);
    const key = row[query.groupBy];
    let group = groups.get(key);
    if (group === undefined) {
      group = { key, ...emptyTotals() };
      groups.set(key, group);
    }
    add(group, row);
  }
  return {
    userId: query.userId,
    from: query.from,
    to: query.to,
    groupBy: query.groupBy,
    totals,
    groups: [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
  };
}
