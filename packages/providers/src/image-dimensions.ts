import { detectImageMediaType } from "./detect-image-media-type.ts";

/** The pixel size and media type of encoded image bytes. */
export interface ImageDimensions {
  width: number;
  height: number;
  mediaType: string;
}

/**
 * Reads the pixel size of a PNG, JPEG, WebP or GIF from its header, without
 * decoding the picture, so an asset's dimensions can be recorded whatever the
 * provider sent. Returns `undefined` for other formats and for headers that are
 * truncated, malformed or declare a zero size.
 *
 * JPEG sizes are as stored: an EXIF orientation that rotates the picture by 90°
 * is not applied. GIF sizes are the logical screen's.
 */
export function imageDimensions(bytes: Uint8Array): ImageDimensions | undefined {
  const mediaType = detectImageMediaType(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size: Size;
  switch (mediaType) {
    case "image/png":
      size = pngSize(bytes, view);
      break;
    case "image/jpeg":
      size = jpegSize(view);
      break;
    case "image/webp":
      size = webpSize(bytes, view);
      break;
    case "image/gif":
      size = gifSize(view);
      break;
    default:
      return undefined;
  }
  if (size === undefined || size.width === 0 || size.height === 0) return undefined;
  return { ...size, mediaType };
}

type Size = { width: number; height: number } | undefined;

function fourCharacterCode(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}

/** The IHDR chunk must come first, right after the 8-byte signature. */
function pngSize(bytes: Uint8Array, view: DataView): Size {
  if (bytes.length < 24 || fourCharacterCode(bytes, 12) !== "IHDR") return undefined;
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Logical screen width and height, little-endian, after "GIF87a"/"GIF89a". */
function gifSize(view: DataView): Size {
  if (view.byteLength < 10) return undefined;
  return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
}

/**
 * Start-of-frame markers carry the size: SOF0..SOF15 except DHT (C4), JPG (C8)
 * and DAC (CC), which share the range.
 */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Walks the marker segments up to the first start-of-frame. */
function jpegSize(view: DataView): Size {
  let offset = 2;
  while (offset + 4 <= view.byteLength) {
    if (view.getUint8(offset) !== 0xff) return undefined;
    const marker = view.getUint8(offset + 1);
    if (marker === 0xff) {
      // Fill byte before a marker.
      offset += 1;
      continue;
    }
    // Markers without a length: TEM, RST0..RST7 and a stray SOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      offset += 2;
      continue;
    }
    // End of image, or entropy-coded data, before any frame header.
    if (marker === 0xd9 || marker === 0xda) return undefined;
    const length = view.getUint16(offset + 2);
    if (length < 2) return undefined;
    if (isStartOfFrame(marker)) {
      // Segment: length (2), precision (1), height (2), width (2).
      if (offset + 9 > view.byteLength) return undefined;
      return { width: view.getUint16(offset + 7), height: view.getUint16(offset + 5) };
    }
    offset += 2 + length;
  }
  return undefined;
}

/** The first chunk after "RIFF" size "WEBP" says which of the three encodings follows. */
function webpSize(bytes: Uint8Array, view: DataView): Size {
  if (bytes.length < 30) return undefined;
  switch (fourCharacterCode(bytes, 12)) {
    case "VP8 ": {
      // Lossy: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
      if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a) return undefined;
      return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    }
    case "VP8L": {
      // Lossless: signature 0x2f, then width - 1 and height - 1 in 14 bits each, LSB first.
      if (bytes[20] !== 0x2f) return undefined;
      const bits = view.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    case "VP8X": {
      // Extended: flags (1), reserved (3), canvas width - 1 and height - 1 in 24 bits each.
      return { width: readUint24LittleEndian(bytes, 24) + 1, height: readUint24LittleEndian(bytes, 27) + 1 };
    }
    default:
      return undefined;
  }
}

function readUint24LittleEndian(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16);
}
