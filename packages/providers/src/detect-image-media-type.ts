/**
 * The media type of encoded image bytes, from their magic numbers. Providers do
 * not always say what they sent (a URL's content type may be generic, a base64
 * field has none), and storage needs a correct content type.
 */
export function detectImageMediaType(bytes: Uint8Array): string | undefined {
  const startsWith = (offset: number, signature: number[]) =>
    signature.every((value, index) => bytes[offset + index] === value);
  if (startsWith(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (startsWith(0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (startsWith(0, [0x52, 0x49, 0x46, 0x46]) && startsWith(8, [0x57, 0x45, 0x42, 0x50])) return "image/webp";
  if (startsWith(0, [0x47, 0x49, 0x46, 0x38])) return "image/gif";
  return undefined;
}
