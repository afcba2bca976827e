import { createHash } from "node:crypto";

/** `sha256:` and the first 12 hex digits of the SHA-256 of `text`: short enough to show, long enough to tell versions apart. */
export function shortHash(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex").slice(0, 12)}`;
}
