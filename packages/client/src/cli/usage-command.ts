import { type CommandContext, choiceFlag, EXIT, output } from "./cli-context.ts";

const GROUP_BY = ["day", "provider", "model", "type"] as const;

/** Millionths of a dollar as dollars: 1234567 → $1.2346. */
function dollars(microUsd: number): string {
  return `$${(microUsd / 1_000_000).toFixed(4)}`;
}

/** `genq usage`: this month's usage, cost and quota (`--group-by day|provider|model|type`). */
export async function usageCommand(context: CommandContext): Promise<number> {
  const groupBy = choiceFlag(context.flags["group-by"], "group-by", GROUP_BY);
  const usage = await context.client.usage.get(groupBy === undefined ? {} : { groupBy });
  const { totals, quota, projection } = usage;
  const limit = (value: number | null) => (value === null ? "no limit" : String(value));
  const lines = [
    `usage ${usage.from} → ${usage.to} (plan ${quota.plan})`,
    `  jobs ${totals.jobs}, tokens in ${totals.inputTokens} out ${totals.outputTokens}, images ${totals.images}, cost ${dollars(totals.costMicroUsd)}`,
    `quota until ${quota.resetsAt}`,
    `  text tokens ${quota.textTokens.used} used + ${quota.textTokens.reserved} reserved of ${limit(quota.textTokens.limit)}`,
    `  images      ${quota.images.used} used + ${quota.images.reserved} reserved of ${limit(quota.images.limit)}`,
    `  cost        ${dollars(quota.costMicroUsd.used)} used of ${quota.costMicroUsd.limit === null ? "no limit" : dollars(quota.costMicroUsd.limit)}`,
    `projected month-end cost ${dollars(projection.projectedMonthEndCostMicroUsd)}`,
    ...usage.groups.map((group) => `  ${group.key}: ${group.jobs} jobs, ${dollars(group.costMicroUsd)}`),
  ];
  await output(context, lines.join("\n"), usage);
  return EXIT.ok;
}
