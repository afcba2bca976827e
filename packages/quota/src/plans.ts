import { GenqError, PRIORITIES, PRIORITY_NAMES, type PriorityName } from "@genq/core";
import type { Plan } from "@genq/db";
import { z } from "zod";

/** The largest value an `int` column (images) holds. */
const MAX_INT32 = 2_147_483_647;

/**
 * A plan's monthly limits. `monthlyBudgetMicroUsd` is a cost ceiling in
 * micro-USD; absent or null means the plan has no budget (cost is unlimited).
 */
export const PlanLimits = z.object({
  textTokens: z.int().nonnegative(),
  images: z.int().nonnegative().max(MAX_INT32),
  monthlyBudgetMicroUsd: z.int().nonnegative().nullable().optional(),
});
export type PlanLimits = z.infer<typeof PlanLimits>;

/**
 * Limits per plan, used for every plan the configuration does not override. Each
 * has a monthly cost budget, so no plan can run up an unbounded bill on an expensive
 * model: basic $20, professional $100, enterprise $500. Each is above what the
 * plan's token and image limits cost at list prices of the built-in models (100k
 * tokens of gpt-4o output are $1; 50 gpt-image-1 high images about $12.50), so the
 * budget binds only where prices are higher than those. Set `monthlyBudgetMicroUsd`
 * to null in `GENQ_PLANS` for a plan without a budget.
 */
export const DEFAULT_PLANS: Readonly<Record<Plan, PlanLimits>> = Object.freeze({
  basic: { textTokens: 100_000, images: 50, monthlyBudgetMicroUsd: 20_000_000 },
  professional: { textTokens: 500_000, images: 200, monthlyBudgetMicroUsd: 100_000_000 },
  enterprise: { textTokens: 2_000_000, images: 1_000, monthlyBudgetMicroUsd: 500_000_000 },
});

/**
 * A user's own limits, stored on the users row; each wins over the plan's. Null
 * clears an override (the plan's limit applies again).
 */
export const UserLimits = z.object({
  textTokenLimit: z.int().nonnegative().nullable().optional(),
  imageLimit: z.int().nonnegative().max(MAX_INT32).nullable().optional(),
  monthlyBudgetMicroUsd: z.int().nonnegative().nullable().optional(),
});
export type UserLimits = z.infer<typeof UserLimits>;

/**
 * Plan limits from configuration: JSON such as
 * `{"basic": {"textTokens": 200000}, "enterprise": {"monthlyBudgetMicroUsd": 500000000}}`;
 * each plan's given limits replace the defaults, the rest stay.
 */
export const PlansFromJson = z
  .string()
  .transform((text, context) => {
    let plans: unknown;
    try {
      plans = JSON.parse(text);
    } catch {
      context.addIssue({ code: "custom", message: 'must be JSON, e.g. {"basic":{"textTokens":200000}}' });
      return z.NEVER;
    }
    // Named here rather than left to the record's "Unrecognized key", so the fix is in the message.
    const planNames = Object.keys(DEFAULT_PLANS);
    if (typeof plans === "object" && plans !== null && !Array.isArray(plans)) {
      for (const name of Object.keys(plans).filter((key) => !planNames.includes(key))) {
        context.addIssue({
          code: "custom",
          message: `names an unknown plan "${name}"; the plans are ${planNames.join(", ")}`,
        });
      }
    }
    return plans;
  })
  .pipe(z.partialRecord(z.enum(["basic", "professional", "enterprise"]), PlanLimits.partial().strict()));
export type PlansFromJson = z.infer<typeof PlansFromJson>;

/** The default plans with configured limits laid over them. */
export function resolvePlans(overrides: PlansFromJson | undefined): Record<Plan, PlanLimits> {
  return {
    basic: { ...DEFAULT_PLANS.basic, ...overrides?.basic },
    professional: { ...DEFAULT_PLANS.professional, ...overrides?.professional },
    enterprise: { ...DEFAULT_PLANS.enterprise, ...overrides?.enterprise },
  };
}

/**
 * The most urgent priority each plan may submit (jobs and batches): `urgent` and `high`
 * jump ahead of every other tenant's `normal` jobs, so they are a paid feature.
 */
export const DEFAULT_PLAN_PRIORITY_CEILINGS: Readonly<Record<Plan, PriorityName>> = Object.freeze({
  basic: "normal",
  professional: "high",
  enterprise: "urgent",
});

/**
 * Refuses a priority more urgent than the plan allows: a 403 `forbidden` naming the
 * priority, the plan and the priorities it may use.
 */
export function checkPlanPriority(
  plan: Plan,
  priority: PriorityName,
  ceilings: Readonly<Record<Plan, PriorityName>> = DEFAULT_PLAN_PRIORITY_CEILINGS,
): void {
  const ceiling = ceilings[plan];
  if (PRIORITIES[priority] >= PRIORITIES[ceiling]) return;
  const allowed = PRIORITY_NAMES.filter((name) => PRIORITIES[name] >= PRIORITIES[ceiling]);
  throw new GenqError(
    "forbidden",
    `priority "${priority}" is not available on the ${plan} plan; use one of ${allowed.map((name) => `"${name}"`).join(", ")}`,
    { details: { field: "priority", priority, plan, allowed } },
  );
}
