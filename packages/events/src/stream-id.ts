/** The id to read a stream from its beginning. */
export const STREAM_START = "0";

const STREAM_ID = /^(\d{1,20})(?:-(\d{1,20}))?$/;
const MAX_U64 = 18_446_744_073_709_551_615n;

/**
 * Whether `value` is a Redis stream entry id (`<ms>-<seq>`, or `<ms>` alone) that a
 * client may send back as `Last-Event-ID`. Both parts must fit in 64 bits.
 */
export function isStreamId(value: string): boolean {
  const match = STREAM_ID.exec(value);
  if (match === null) return false;
  return BigInt(match[1] ?? "0") <= MAX_U64 && BigInt(match[2] ?? "0") <= MAX_U64;
}
