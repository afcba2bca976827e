/** Output tokens reserved for a text job that sets no `maxTokens` (at submit and in the worker alike). */
export const DEFAULT_RESERVED_OUTPUT_TOKENS = 1_024;

/**
 * The worst case a text job can use, to reserve before the provider call: the
 * estimated input tokens plus the most output it may produce (its `maxTokens`,
 * or the model's default when the request sets none).
 */
export function estimateTextReservation(input: {
  inputTokens: number;
  maxTokens?: number | null | undefined;
  defaultMaxTokens: number;
}): number {
  return input.inputTokens + (input.maxTokens ?? input.defaultMaxTokens);
}
