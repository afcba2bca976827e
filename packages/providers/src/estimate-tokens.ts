/** Characters per token in English text, the rule of thumb OpenAI documents. */
const CHARACTERS_PER_TOKEN = 4;

/**
 * A deterministic token estimate (~4 characters per token, at least 1 for any
 * non-empty text). Used where no tokenizer is available: the mock provider, and
 * servers that do not report usage. It is for accounting, not for billing parity.
 */
export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  return Math.max(1, Math.ceil(text.length / CHARACTERS_PER_TOKEN));
}

/** The longest prefix of `text` that {@link estimateTokens} counts as at most `maxTokens` tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  return text.slice(0, Math.max(0, maxTokens) * CHARACTERS_PER_TOKEN);
}
