/** How deep JSON a client sends may nest (Postgres and our own code stay well away from their limits). */
export const MAX_JSON_DEPTH = 32;

/** Why a value cannot be stored as JSON text in Postgres, and where. */
export interface UnstorableJson {
  path: Array<string | number>;
  message: string;
}

/**
 * Finds the first place where `value` cannot be stored: a string or key with a NUL
 * character (Postgres text and jsonb reject `\u0000`) or nesting deeper than
 * `maxDepth`. Iterative, so hostile nesting cannot overflow the stack.
 */
export function findUnstorableJson(value: unknown, maxDepth = MAX_JSON_DEPTH): UnstorableJson | undefined {
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (typeof current === "string") {
      if (current.includes("\u0000")) return { path, message: "must not contain NUL (\\u0000) characters" };
      continue;
    }
    if (current === null || typeof current !== "object") continue;
    if (path.length >= maxDepth) return { path, message: `nests deeper than ${maxDepth} levels` };
    if (Array.isArray(current)) {
      current.forEach((item, index) => {
        stack.push({ value: item, path: [...path, index] });
      });
      continue;
    }
    for (const [key, item] of Object.entries(current)) {
      if (key.includes("\u0000"))
        return { path: [...path, key], message: "keys must not contain NUL (\\u0000) characters" };
      stack.push({ value: item, path: [...path, key] });
    }
  }
  return undefined;
}
