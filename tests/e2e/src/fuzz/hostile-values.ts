import fc from "fast-check";

/** Strings that break naive parsers, loggers, databases and regexes. */
export const ODD_STRINGS: readonly string[] = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800", // a lone high surrogate
  "\udfff", // a lone low surrogate
  "x\ud83dy", // half an emoji
  "\ufeff", // byte order mark
  "\u202e\u202d", // bidi overrides
  "e\u0301\u0301\u0301\u0301", // stacked combining marks
  "\u{10ffff}",
  "𝕳𝖊𝖑𝖑𝖔",
  "\r\n\r\nX-Injected: 1",
  "%00",
  "%ZZ",
  "../../../../etc/passwd",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template injection probe, sent as it is
  "${process.env}",
  "{{7*7}}",
  "'; DROP TABLE jobs; --",
  "<script>alert(1)</script>",
  "__proto__",
  "constructor",
  "prototype",
  "NaN",
  "Infinity",
  "-0",
  "1e308",
  "true",
  "null",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "018f0000-0000-7000-8000-00000000000g",
];

/** Numbers at the edges of what JSON, JavaScript, Postgres integers and zod accept. */
export const ODD_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1.5,
  0.1,
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER - 2,
  2 ** 31,
  2 ** 31 - 1,
  -(2 ** 31) - 1,
  2 ** 63,
  5e-324,
];

/** Raw JSON number texts that `JSON.stringify` never produces. */
export const ODD_NUMBER_TEXTS: readonly string[] = [
  "1e400",
  "-1e400",
  "1e-400",
  "123456789012345678901234567890",
  "-0.0",
  "0.0000000000000000000000000001",
  "1E+2",
];

/** Any string, including lone surrogates and control characters. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...ODD_STRINGS), weight: 3 },
  { arbitrary: fc.string({ unit: "binary", maxLength: 40 }), weight: 2 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  { arbitrary: fc.integer({ min: 1_000, max: 70_000 }).map((length) => "x".repeat(length)), weight: 1 },
);

/** A JSON value of the wrong kind for almost any field. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 3 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constantFrom(...ODD_NUMBERS), weight: 2 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: anyString, weight: 3 },
  { arbitrary: fc.constant([]), weight: 1 },
  { arbitrary: fc.constant({}), weight: 1 },
  { arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }), weight: 1 },
  { arbitrary: fc.dictionary(anyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), weight: 1 },
  { arbitrary: fc.constant({ __proto__: { polluted: true } }), weight: 1 },
  {
    arbitrary: fc.constant(JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}')),
    weight: 1,
  },
  { arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((length) => Array(length).fill(0)), weight: 1 },
  { arbitrary: fc.integer({ min: 50, max: 500 }).map((depth) => nestedValue(depth)), weight: 1 },
);

/** `[[[...]]]` or `{"a":{"a":...}}`, `depth` levels deep, as a value. */
export function nestedValue(depth: number, shape: "object" | "array" = "object"): unknown {
  let value: unknown = {};
  for (let level = 0; level < depth; level += 1) value = shape === "object" ? { a: value } : [value];
  return value;
}

/** The same, as JSON text (too deep for `JSON.stringify` at large depths). */
export function nestedJson(depth: number, shape: "object" | "array" = "object"): string {
  return shape === "object"
    ? `${'{"a":'.repeat(depth)}{}${"}".repeat(depth)}`
    : `${"[".repeat(depth)}${"]".repeat(depth)}`;
}

/** A JSON object with one string field of `bytes` bytes in total (give or take a few). */
export function jsonOfSize(bytes: number, base: Record<string, unknown> = {}): string {
  const prefix = JSON.stringify({ ...base, padding: "" });
  return `${prefix.slice(0, -2)}${"x".repeat(Math.max(0, bytes - prefix.length))}"}`;
}
