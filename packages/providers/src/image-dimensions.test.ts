import { describe, expect, it } from "vitest";
import { imageDimensions } from "./image-dimensions.ts";
import { renderPng } from "./mock/render-png.ts";

function bytes(...parts: Array<number[] | string>): Uint8Array {
  return Uint8Array.from(
    parts.flatMap((part) =>
      typeof part === "string" ? [...part].map((character) => character.charCodeAt(0)) : part,
    ),
  );
}

const uint16BigEndian = (value: number) => [value >> 8, value & 0xff];
const uint16LittleEndian = (value: number) => [value & 0xff, value >> 8];
const uint24LittleEndian = (value: number) => [value & 0xff, (value >> 8) & 0xff, value >> 16];
const uint32LittleEndian = (value: number) => [...uint24LittleEndian(value & 0xffffff), value >>> 24];

/** A JPEG header up to its frame header: APP0, a DHT (whose C4 marker must not pass for a frame), then SOF. */
function jpeg(sofMarker: number, width: number, height: number): Uint8Array {
  const app0 = [[0xff, 0xe0, ...uint16BigEndian(16)], "JFIF\0", [1, 1, 0, 0, 1, 0, 1, 0, 0]];
  const dht = [0xff, 0xc4, ...uint16BigEndian(5), 0x00, 0x01, 0x02];
  const frameHeader = [
    0xff,
    sofMarker,
    ...uint16BigEndian(17),
    8,
    ...uint16BigEndian(height),
    ...uint16BigEndian(width),
  ];
  const components = [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  // The extra 0xff before the frame header is a fill byte, which decoders skip.
  return bytes([0xff, 0xd8], ...app0, dht, [0xff], frameHeader, components, [0xff, 0xda]);
}

/** RIFF container with one chunk of the given type. */
function webp(chunkType: string, payload: number[]): Uint8Array {
  return bytes(
    "RIFF",
    uint32LittleEndian(4 + 8 + payload.length),
    "WEBP",
    chunkType,
    uint32LittleEndian(payload.length),
    payload,
  );
}

describe("imageDimensions", () => {
  it("reads a PNG's size from IHDR", () => {
    expect(imageDimensions(renderPng({ width: 320, height: 200, seed: "png" }))).toEqual({
      width: 320,
      height: 200,
      mediaType: "image/png",
    });
  });

  it("reads bytes that sit at an offset in a larger buffer", () => {
    const png = renderPng({ width: 33, height: 17, seed: "offset" });
    const padded = new Uint8Array(png.length + 5);
    padded.set(png, 5);
    expect(imageDimensions(padded.subarray(5))).toMatchObject({ width: 33, height: 17 });
  });

  it("reads a baseline JPEG's size from SOF0, past APP0 and DHT segments and fill bytes", () => {
    expect(imageDimensions(jpeg(0xc0, 640, 480))).toEqual({
      width: 640,
      height: 480,
      mediaType: "image/jpeg",
    });
  });

  it("reads a progressive JPEG's size from SOF2", () => {
    expect(imageDimensions(jpeg(0xc2, 1920, 1080))).toMatchObject({ width: 1920, height: 1080 });
  });

  it("gives up on a JPEG whose scan starts before any frame header", () => {
    expect(imageDimensions(bytes([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 1, 2, 3, 4, 5, 6]))).toBeUndefined();
  });

  it("reads a lossy WebP's size from VP8, ignoring the scale bits", () => {
    const payload = [
      0x50,
      0x2a,
      0x00,
      0x9d,
      0x01,
      0x2a,
      ...uint16LittleEndian(0x4000 | 800),
      ...uint16LittleEndian(600),
    ];
    expect(imageDimensions(webp("VP8 ", [...payload, 0, 0]))).toEqual({
      width: 800,
      height: 600,
      mediaType: "image/webp",
    });
  });

  it("reads a lossless WebP's size from VP8L", () => {
    const packed = (1023 - 1) | ((77 - 1) << 14) | (1 << 28);
    expect(imageDimensions(webp("VP8L", [0x2f, ...uint32LittleEndian(packed), 0, 0, 0, 0, 0]))).toMatchObject(
      {
        width: 1023,
        height: 77,
      },
    );
  });

  it("reads an extended WebP's canvas size from VP8X", () => {
    const payload = [0x10, 0, 0, 0, ...uint24LittleEndian(5000 - 1), ...uint24LittleEndian(300 - 1)];
    expect(imageDimensions(webp("VP8X", payload))).toMatchObject({ width: 5000, height: 300 });
  });

  it("reads a GIF's logical screen size", () => {
    const header = bytes("GIF89a", uint16LittleEndian(500), uint16LittleEndian(70), [0xf7, 0, 0]);
    expect(imageDimensions(header)).toEqual({ width: 500, height: 70, mediaType: "image/gif" });
  });

  it.each([
    ["empty bytes", bytes()],
    ["an unknown format", bytes("BM", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
    ["a PNG cut off in IHDR", renderPng({ width: 8, height: 8, seed: "cut" }).subarray(0, 20)],
    ["a GIF without a screen descriptor", bytes("GIF89a", [1])],
    ["a WebP with an unknown chunk", webp("ABCD", new Array(20).fill(0))],
    ["a VP8 without its start code", webp("VP8 ", new Array(12).fill(0))],
    ["a zero-sized GIF", bytes("GIF89a", [0, 0, 0, 0, 0, 0, 0])],
  ])("returns undefined for %s", (_, input) => {
    expect(imageDimensions(input)).toBeUndefined();
  });
});
