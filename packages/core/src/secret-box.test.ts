import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSecretBox, parseKeyRing } from "./secret-box.ts";

const k1 = randomBytes(32);
const k2 = randomBytes(32);

describe("createSecretBox", () => {
  it("seals with the current key and opens what it sealed", () => {
    const box = createSecretBox({ keys: [{ id: "k1", key: k1 }], currentKeyId: "k1" });
    const sealed = box.seal("sk-secret-value");
    expect(sealed.keyId).toBe("k1");
    expect(sealed.ciphertext).not.toContain("sk-secret");
    // iv(12) + tag(16) + data
    expect(Buffer.from(sealed.ciphertext, "base64")).toHaveLength(12 + 16 + "sk-secret-value".length);
    expect(box.open(sealed)).toBe("sk-secret-value");
  });

  it("uses a fresh IV, so sealing the same text twice gives different ciphertexts", () => {
    const box = createSecretBox({ keys: [{ id: "k1", key: k1 }], currentKeyId: "k1" });
    expect(box.seal("same").ciphertext).not.toBe(box.seal("same").ciphertext);
  });

  it("opens secrets of an older key after rotation and seals new ones with the new key", () => {
    const old = createSecretBox({ keys: [{ id: "k1", key: k1 }], currentKeyId: "k1" });
    const sealed = old.seal("before rotation");
    const rotated = createSecretBox({
      keys: [
        { id: "k2", key: k2 },
        { id: "k1", key: k1 },
      ],
      currentKeyId: "k2",
    });
    expect(rotated.open(sealed)).toBe("before rotation");
    const fresh = rotated.seal("after rotation");
    expect(fresh.keyId).toBe("k2");
    expect(rotated.open(fresh)).toBe("after rotation");
  });

  it("refuses a tampered ciphertext, a relabelled key id and another context", () => {
    const box = createSecretBox({
      keys: [
        { id: "k1", key: k1 },
        { id: "k2", key: k1 },
      ],
      currentKeyId: "k1",
    });
    const sealed = box.seal("secret", "user-a:openai");
    const bytes = Buffer.from(sealed.ciphertext, "base64");
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    expect(() => box.open({ ...sealed, ciphertext: bytes.toString("base64") }, "user-a:openai")).toThrow(
      /does not authenticate/,
    );
    expect(() => box.open({ ...sealed, keyId: "k2" }, "user-a:openai")).toThrow(/does not authenticate/);
    expect(() => box.open(sealed, "user-b:openai")).toThrow(/does not authenticate/);
    expect(box.open(sealed, "user-a:openai")).toBe("secret");
  });

  it("names a missing key id when opening", () => {
    const box = createSecretBox({ keys: [{ id: "k2", key: k2 }], currentKeyId: "k2" });
    expect(() => box.open({ keyId: "k1", ciphertext: "AAAA" })).toThrow(/no key "k1"/);
  });

  it("rejects keys that are not 32 bytes and a current id outside the ring", () => {
    expect(() => createSecretBox({ keys: [{ id: "k1", key: randomBytes(16) }], currentKeyId: "k1" })).toThrow(
      /32 bytes/,
    );
    expect(() => createSecretBox({ keys: [{ id: "k1", key: k1 }], currentKeyId: "k9" })).toThrow(
      /not in the ring/,
    );
  });
});

describe("parseKeyRing", () => {
  it("reads id:base64 entries, the first one current", () => {
    const ring = parseKeyRing(` k2:${k2.toString("base64")}, k1:${k1.toString("base64")} `);
    expect(ring.currentKeyId).toBe("k2");
    expect(ring.keys.map((key) => key.id)).toEqual(["k2", "k1"]);
    expect(ring.keys[1]?.key.equals(k1)).toBe(true);
  });

  it("gives clear errors that never echo key material", () => {
    const short = randomBytes(16).toString("base64");
    const cases: Array<[string, RegExp]> = [
      ["", /at least one/],
      [short, /no colon/],
      [`k1:${short}`, /entry 1 \(k1\): the key must be 32 bytes of base64, got 16 bytes/],
      [`k1:${k1.toString("base64")},k1:${k2.toString("base64")}`, /entry 2: the id k1 appears twice/],
      [`k1:not base64!!`, /entry 1 \(k1\): the key is not base64/],
      [`bad id:${k1.toString("base64")}`, /entry 1: the id must match/],
    ];
    for (const [text, expected] of cases) {
      let message = "";
      try {
        parseKeyRing(text);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(expected);
      expect(message).not.toContain(short);
      expect(message).not.toContain(k1.toString("base64"));
      expect(message).not.toContain("not base64!!");
    }
  });
});
