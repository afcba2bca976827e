// Control characters and the path separators a browser would strip anyway.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN_FILENAME_CHARACTERS = /[\u0000-\u001f\u007f/\\]/;
const MAX_FILENAME_LENGTH = 255;

/** Throws a `TypeError` unless `filename` is 1–255 characters with no control characters, `/` or `\`. */
export function assertFilename(filename: unknown): asserts filename is string {
  if (
    typeof filename !== "string" ||
    filename.length === 0 ||
    filename.length > MAX_FILENAME_LENGTH ||
    FORBIDDEN_FILENAME_CHARACTERS.test(filename)
  ) {
    throw new TypeError(
      `filename must be 1 to ${MAX_FILENAME_LENGTH} characters without control characters, "/" or "\\"`,
    );
  }
}

/**
 * The `Content-Disposition: attachment` value for a download name, with an ASCII
 * fallback and the exact name RFC 5987-encoded (`filename*=UTF-8''...`). Used for S3's
 * `response-content-disposition` and by the route serving local signed URLs, so both
 * drivers send the same header.
 */
export function contentDisposition(filename: string): string {
  assertFilename(filename);
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
