import type { JobRecord } from "@genq/db";

/** Columns of `jobs` that arrive from `pg` as text (int8) and are BigInt on a JobRecord. */
const BIGINT_COLUMNS = new Set(["cost_micro_usd"]);

/** Columns a lifecycle statement selects beside the job's own. */
const EXTRA_COLUMNS = new Set([
  "held",
  "owner_id",
  "owner_plan",
  "owner_disabled",
  "running_count",
  "tenant_cap",
  "excess",
]);

const camelNames = new Map<string, string>();

function camel(column: string): string {
  let name = camelNames.get(column);
  if (name === undefined) {
    name = column.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    camelNames.set(column, name);
  }
  return name;
}

/**
 * A `jobs` row read through `pg` (snake_case, int8 as text) as the JobRecord Prisma
 * would return: every column of the table, so a new column needs no change here.
 */
export function toJobRecord(row: Record<string, unknown>): JobRecord {
  const record: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (EXTRA_COLUMNS.has(column)) continue;
    record[camel(column)] = BIGINT_COLUMNS.has(column) && value !== null ? BigInt(value as string) : value;
  }
  return record as unknown as JobRecord;
}
