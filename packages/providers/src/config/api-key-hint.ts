/**
 * A hint that tells operators which key is meant without revealing it:
 * `sk-…abcd` (first 3 and last 4 characters) for a key of 16 characters or
 * more, `…abcd` for a shorter one, and only `…` below 8 characters, where 4
 * characters would give away half the secret.
 */
export function apiKeyHint(apiKey: string): string {
  if (apiKey.length >= 16) return `${apiKey.slice(0, 3)}…${apiKey.slice(-4)}`;
  if (apiKey.length >= 8) return `…${apiKey.slice(-4)}`;
  return "…";
}
