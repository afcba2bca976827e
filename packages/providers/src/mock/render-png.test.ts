import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { renderPng } from "./render-png.ts";

interface Chunk {
  type: string;
  data: Uint8Array;
  crc: number;
  /** The bytes the CRC covers: type and data. */
  covered: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (ISO 3309, as PNG uses), written out here so the test does not trust the encoder's. */
const CRC_TABLE = Array.from({ length: 256 }, (_, index) => {
  let value = index;
  for (let bit = 0; bit < 8; bit++) value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1;
  return value >>> 0;
});

function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function readChunks(png: Uint8Array): Chunk[] {
  expect([...png.subarray(0, 8)]).toEqual(SIGNATURE);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  let offset = 8;
  while (offset < png.length) {
    const length = view.getUint32(offset);
    expect(offset + 12 + length).toBeLessThanOrEqual(png.length);
    chunks.push({
      type: String.fromCharCode(...png.subarray(offset + 4, offset + 8)),
      data: png.subarray(offset + 8, offset + 8 + length),
      crc: view.getUint32(offset + 8 + length),
      covered: png.subarray(offset + 4, offset + 8 + length),
    });
    offset += 12 + length;
  }
  return chunks;
}

/** Checks the container and returns the RGB pixels, row by row without filter bytes. */
function decode(png: Uint8Array): { width: number; height: number; pixels: Uint8Array } {
  const chunks = readChunks(png);
  for (const chunk of chunks) expect(chunk.crc, `CRC of ${chunk.type}`).toBe(referenceCrc32(chunk.covered));
  expect(chunks[0]?.type).toBe("IHDR");
  expect(chunks.at(-1)).toMatchObject({ type: "IEND", data: new Uint8Array(0) });

  const header = chunks[0]!.data;
  const headerView = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const width = headerView.getUint32(0);
  const height = headerView.getUint32(4);
  // bit depth 8, colour type 2 (RGB), compression 0, filter 0, no interlace
  expect([...header.subarray(8)]).toEqual([8, 2, 0, 0, 0]);

  const compressed = Buffer.concat(
    chunks.filter((chunk) => chunk.type === "IDAT").map((chunk) => chunk.data),
  );
  const raw = inflateSync(compressed);
  const rowLength = 1 + width * 3;
  expect(raw.length).toBe(height * rowLength);
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    expect(raw[y * rowLength], `filter type of row ${y}`).toBe(0);
    pixels.set(raw.subarray(y * rowLength + 1, (y + 1) * rowLength), y * width * 3);
  }
  return { width, height, pixels };
}

/** The share of pixels whose colours differ by more than a barely visible amount. */
function differingShare(first: Uint8Array, second: Uint8Array): number {
  let differing = 0;
  for (let offset = 0; offset < first.length; offset += 3) {
    const distance =
      Math.abs(first[offset]! - second[offset]!) +
      Math.abs(first[offset + 1]! - second[offset + 1]!) +
      Math.abs(first[offset + 2]! - second[offset + 2]!);
    if (distance > 30) differing++;
  }
  return differing / (first.length / 3);
}

describe("renderPng", () => {
  it.each([
    [1, 1],
    [7, 300],
    [640, 480],
    [1024, 1024],
    [4096, 2],
  ])(
    "encodes a valid %ix%i RGB PNG whose CRCs check and whose pixel data inflates to full rows",
    (width, height) => {
      const decoded = decode(renderPng({ width, height, seed: "a red fox" }));
      expect(decoded).toMatchObject({ width, height });
    },
  );

  it("draws the same bytes for the same seed", () => {
    const first = renderPng({ width: 256, height: 192, seed: "lighthouse at dusk" });
    const again = renderPng({ width: 256, height: 192, seed: "lighthouse at dusk" });
    expect(Buffer.from(again).equals(first)).toBe(true);
  });

  it("draws visibly different pictures for different seeds", () => {
    const seeds = ["lighthouse at dusk", "lighthouse at dusk\n1", "a", "b", ""];
    const pictures = seeds.map((seed) => decode(renderPng({ width: 128, height: 128, seed })).pixels);
    for (let first = 0; first < pictures.length; first++) {
      for (let second = first + 1; second < pictures.length; second++) {
        expect(differingShare(pictures[first]!, pictures[second]!)).toBeGreaterThan(0.3);
      }
    }
  });

  it("draws more than a flat colour", () => {
    const { pixels } = decode(renderPng({ width: 64, height: 64, seed: "texture" }));
    const colors = new Set<number>();
    for (let offset = 0; offset < pixels.length; offset += 3) {
      colors.add((pixels[offset]! << 16) | (pixels[offset + 1]! << 8) | pixels[offset + 2]!);
    }
    expect(colors.size).toBeGreaterThan(20);
  });

  it.each([
    { width: 0, height: 10 },
    { width: 10, height: 4097 },
    { width: 1.5, height: 10 },
    { width: Number.NaN, height: 10 },
  ])("rejects the size $width x $height", ({ width, height }) => {
    expect(() => renderPng({ width, height, seed: "x" })).toThrow(RangeError);
  });
});
