/** Reads a header from a `Headers` object or a plain record (lower-case names). */
type HeaderSource = Headers | Record<string, string | undefined> | undefined | null;

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  return headers[name];
}

/**
 * How long a provider asked us to wait, in milliseconds, from `retry-after-ms`
 * (OpenAI's precise variant, preferred) or `retry-after` (seconds, or an HTTP
 * date). Undefined when neither header is present or parseable. Never negative:
 * a date in the past means "now".
 */
export function parseRetryAfter(headers: HeaderSource, now: number = Date.now()): number | undefined {
  const milliseconds = readHeader(headers, "retry-after-ms");
  if (milliseconds !== undefined && milliseconds.trim() !== "") {
    const value = Number(milliseconds);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const retryAfter = readHeader(headers, "retry-after")?.trim();
  if (retryAfter === undefined || retryAfter === "") return undefined;
  const seconds = Number(retryAfter);
  if (Number.isFinite(seconds)) return seconds < 0 ? undefined : Math.ceil(seconds * 1000);
  const date = Date.parse(retryAfter);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
