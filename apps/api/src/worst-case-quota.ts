import { type ImageJobInput, type TextJobInput, toChatMessages } from "@genq/core";
import { maxInputTokens } from "@genq/providers";
import { DEFAULT_RESERVED_OUTPUT_TOKENS, estimateTextReservation } from "@genq/quota";

/**
 * The most one job (or batch item) can use of each quota kind, for the submit-time
 * check: the input's byte bound plus `maxTokens` for text, `n` for images. The
 * worker's reservation stays the authoritative check (it also knows the output cap
 * the catalog gives a job without `maxTokens`).
 */
export function worstCaseQuota(
  request: { type: "text"; input: TextJobInput } | { type: "image"; input: ImageJobInput },
): { textTokens?: number; images?: number } {
  if (request.type === "image") return { images: request.input.n };
  const inputTokens = maxInputTokens(toChatMessages(request.input));
  return {
    textTokens: estimateTextReservation({
      inputTokens,
      maxTokens: request.input.maxTokens,
      defaultMaxTokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
    }),
  };
}
