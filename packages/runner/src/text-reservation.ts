import type { ChatMessage } from "@genq/core";
import { maxInputTokens, type RouterConfig, resolveTargets } from "@genq/providers";
import { DEFAULT_RESERVED_OUTPUT_TOKENS, estimateTextReservation } from "@genq/quota";

/** What a text job reserves, and the output cap every call of it sends. */
export interface TextReservation {
  /** An upper bound on the input tokens ({@link maxInputTokens}). */
  inputTokens: number;
  /** The output cap sent on every call: the reservation holds exactly this much output. */
  outputTokens: number;
  /** Input plus output: what the quota holds. */
  textTokens: number;
}

/**
 * The reservation of a text job, sized so that no call can use more: the input's
 * byte bound, and as output the job's `maxTokens`, else the smallest
 * `maxOutputTokens` of the models it may be routed to (one cap every candidate
 * accepts), else {@link DEFAULT_RESERVED_OUTPUT_TOKENS} when the catalog gives none.
 * The cap is then sent with the call, so the provider cannot produce more.
 */
export function textReservation(
  config: RouterConfig,
  selection: { provider?: string; model?: string },
  messages: readonly ChatMessage[],
  maxTokens: number | undefined,
): TextReservation {
  const inputTokens = maxInputTokens(messages);
  const outputTokens = maxTokens ?? catalogOutputCap(config, selection) ?? DEFAULT_RESERVED_OUTPUT_TOKENS;
  return {
    inputTokens,
    outputTokens,
    textTokens: estimateTextReservation({
      inputTokens,
      maxTokens: outputTokens,
      defaultMaxTokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
    }),
  };
}

/** The smallest `maxOutputTokens` among the candidates that declare one; undefined when none does. */
function catalogOutputCap(
  config: RouterConfig,
  selection: { provider?: string; model?: string },
): number | undefined {
  let plan: ReturnType<typeof resolveTargets>;
  try {
    plan = resolveTargets(config, { ...selection, capability: "text" });
  } catch {
    return undefined; // not routable: the router call itself fails with the reason
  }
  let cap: number | undefined;
  for (const target of plan.tiers.flat()) {
    const declared = config.providers.get(target.provider)?.models.get(target.model)?.maxOutputTokens;
    if (declared !== undefined) cap = Math.min(cap ?? declared, declared);
  }
  return cap;
}
