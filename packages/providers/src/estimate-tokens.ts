/** Characters per token in English text, the rule of thumb OpenAI documents. */
const CHARACTERS_PER_TOKEN = 4;

/**
 * A deterministic token estimate (~4 characters per token, at least 1 for any
 * non-empty text). Used where no tokenizer is available: servers that do not
 * report usage, and rate-limit estimates. It is for accounting, not for billing
 * parity, and never for a reservation: see {@link maxInputTokens}.
 */
export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  return Math.max(1, Math.ceil(text.length / CHARACTERS_PER_TOKEN));
}

/** The longest prefix of `text` that {@link estimateTokens} counts as at most `maxTokens` tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  return text.slice(0, Math.max(0, maxTokens) * CHARACTERS_PER_TOKEN);
}

/**
 * Tokens a message can cost beyond its text: role markers and separators of the
 * chat template (OpenAI documents 3 per message plus 1 for a name; 8 leaves room
 * for other templates, and for a tokenizer's leading-space marker).
 */
export const MESSAGE_OVERHEAD_TOKENS = 8;

/** Tokens a request can cost beyond its messages: the template that primes the reply. */
export const REQUEST_OVERHEAD_TOKENS = 8;

/**
 * An upper bound on the tokens `text` can be, for every tokenizer genq talks to:
 * byte-level BPE (OpenAI, Anthropic, Llama 3, Qwen, DeepSeek) and SentencePiece
 * with byte fallback (Gemini, Gemma, Llama 2) never make a token of less than one
 * UTF-8 byte, so the byte count bounds the token count. A tokenizer that applies
 * NFKC first can expand a character (U+FDFA is 3 bytes, 33 once normalized), so
 * the larger of the two byte counts is taken. CJK (3 bytes a character), emoji
 * (4 or more) and code are never under-counted; English is over-counted about
 * four times, which a reservation only holds until the job settles.
 */
export function maxTokensOf(text: string): number {
  const bytes = Buffer.byteLength(text, "utf8");
  // As many bytes as UTF-16 units: all ASCII, which NFKC never changes.
  if (bytes === text.length) return bytes;
  return Math.max(bytes, Buffer.byteLength(text.normalize("NFKC"), "utf8"));
}

/**
 * An upper bound on the input tokens of a chat request: each message's
 * {@link maxTokensOf} plus {@link MESSAGE_OVERHEAD_TOKENS}, plus
 * {@link REQUEST_OVERHEAD_TOKENS}. What quota reservations hold for input.
 */
export function maxInputTokens(messages: ReadonlyArray<{ content: string }>): number {
  return messages.reduce(
    (sum, message) => sum + maxTokensOf(message.content) + MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
  );
}
