import { type ImageJobInput, type TextJobInput, toChatMessages } from "@genq/core";
import { estimateTokens } from "@genq/providers";
import { DEFAULT_RESERVED_OUTPUT_TOKENS, estimateTextReservation } from "@genq/quota";

/**
 * The most one job (or batch item) can use of each quota kind, for the submit-time
 * check: estimated input plus `maxTokens` for text, `n` for images. The worker's
 * reservation stays the authoritative check.
 */
export function worstCaseQuota(
  request: { type: "text"; input: TextJobInput } | { type: "image"; input: ImageJobInput },
): { textTokens?: number; images?: number } {
  if (request.type === "image") return { images: request.input.n };
  const inputTokens = toChatMessages(request.input).reduce(
    (sum, message) => sum + estimateTokens(message.content),
    0,
  );
  return {
    textTokens: estimateTextReservation({
      inputTokens,
      maxTokens: request.input.maxTokens,
      defaultMaxTokens: DEFAULT_RESERVED_OUTPUT_TOKENS,
    }),
  };
}
