import type { ChatMessage } from "@genq/core";
import { planJob, type RouterConfig } from "@genq/providers";

/** What a text job reserves, and the output cap every call of it sends. */
export interface TextReservation {
  /** An upper bound on the input tokens (`maxInputTokens`). */
  inputTokens: number;
  /** The output cap sent on every call: the reservation holds exactly this much output. */
  outputTokens: number;
  /** Input plus output: what the quota holds. */
  textTokens: number;
}

/**
 * The reservation of a text job, from its plan ({@link planJob}, the one the API holds
 * at admission): the input's byte bound, and as output the job's `maxTokens`, else the
 * smallest `maxOutputTokens` of the models it may be routed to, else
 * `DEFAULT_OUTPUT_TOKENS`. The cap is then sent with the call, so the provider cannot
 * produce more.
 */
export function textReservation(
  config: RouterConfig,
  selection: { provider?: string; model?: string },
  messages: readonly ChatMessage[],
  maxTokens: number | undefined,
): TextReservation {
  const { inputTokens, outputTokens, textTokens } = planJob(config, {
    type: "text",
    selection,
    messages,
    maxTokens,
  });
  return { inputTokens, outputTokens, textTokens };
}
