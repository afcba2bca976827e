/**
 * OpenAI-style ids for genq's UUIDs: `file-<32 hex>`, `batch_<32 hex>`,
 * `batch_req_<32 hex>` (a request line's id, from its genq job). The UUID stays the
 * key in Postgres; the prefix only tells a client what kind of object it holds.
 */

const HEX_32 = /^[0-9a-f]{32}$/;

function compact(uuid: string): string {
  return uuid.replaceAll("-", "");
}

function expand(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function parse(prefix: string, id: string): string | undefined {
  if (!id.startsWith(prefix)) return undefined;
  const hex = id.slice(prefix.length);
  return HEX_32.test(hex) ? expand(hex) : undefined;
}

/** `file-…` for a file's UUID. */
export function toFileId(uuid: string): string {
  return `file-${compact(uuid)}`;
}

/** The UUID of a `file-…` id, or undefined when it is not one genq issued. */
export function parseFileId(id: string): string | undefined {
  return parse("file-", id);
}

/** `batch_…` for an OpenAI batch's UUID. */
export function toBatchId(uuid: string): string {
  return `batch_${compact(uuid)}`;
}

/** The UUID of a `batch_…` id, or undefined when it is not one genq issued. */
export function parseBatchId(id: string): string | undefined {
  return parse("batch_", id);
}

/** `batch_req_…` for the genq job that ran a request line. */
export function toBatchRequestId(jobId: string): string {
  return `batch_req_${compact(jobId)}`;
}

/** `chatcmpl-…` for the chat completion a genq job produced. */
export function toCompletionId(jobId: string): string {
  return `chatcmpl-${compact(jobId)}`;
}
