import { gzipSync } from "node:zlib";
import fc from "fast-check";
import {
  anyString,
  anyValue,
  jsonOfSize,
  nestedJson,
  ODD_NUMBER_TEXTS,
  ODD_STRINGS,
} from "./hostile-values.ts";
import type { FuzzRoute } from "./route-catalog.ts";
import { mutatedBody, parameterValue, type SchemaResolver } from "./schema-arbitrary.ts";

/** One request the fuzzer sends through `app.inject`. */
export interface FuzzRequest {
  /** What kind of trick it is, for the summary and for failure reports. */
  category: string;
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  payload?: string | Buffer;
}

/** What the generators need to know about the system under test. */
export interface FuzzContext {
  /** The fuzzing user's API key (must never come back in a response). */
  apiKey: string;
  /** `Basic ...` with the operator's credentials. */
  operatorAuthorization: string;
  /** Ids of the fuzzing user's own resources (jobs, ...): reach past the 404. */
  ownIds: string[];
  /** Ids of another user's resources, and that user's id and key ids: must answer 404/403, never leak. */
  foreignIds: string[];
  /** Values that name real things on operator-only routes (queue names, key prefixes). */
  operatorValues: string[];
  resolve: SchemaResolver;
  /** The largest JSON body the app accepts, in bytes. */
  bodyLimitBytes: number;
}

/** Raw path segments (already percent-encoded where meant to be). */
export const PATH_TRICKS: readonly string[] = [
  "..",
  ".",
  "%2e%2e",
  "%2E%2E%2F%2E%2E",
  "..%2F..%2Fetc%2Fpasswd",
  "%00",
  "a%00b",
  "%ZZ",
  "%",
  "%u0041",
  "%C0%AE%C0%AE",
  "%FF%FE",
  "%F0%9F%98",
  "%ED%A0%80",
  "a%2Fb",
  "%2F",
  "%5C..%5C",
  "%20",
  "~",
  "not-a-uuid",
  "00000000-0000-0000-0000-000000000000",
  "018F0000-0000-7000-8000-000000000000",
  "{id}",
  ":id",
  "*",
  "x".repeat(10_000),
  "1".repeat(300),
  "__proto__",
  "constructor",
];

/** Percent-encodes `value`, or, for text `encodeURIComponent` refuses (lone surrogates), its UTF-8 bytes. */
export function encodeLoosely(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, "utf8")].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
  }
}

function pathValue(route: FuzzRoute, name: string, context: FuzzContext): fc.Arbitrary<string> {
  const schema =
    route.parameters.find((parameter) => parameter.in === "path" && parameter.name === name)?.schema ?? {};
  const pools: Array<fc.WeightedArbitrary<string>> = [
    { arbitrary: fc.constantFrom(...PATH_TRICKS), weight: 3 },
    { arbitrary: fc.uuid(), weight: 1 },
    { arbitrary: parameterValue(schema, context.resolve).map(encodeLoosely), weight: 2 },
  ];
  if (context.foreignIds.length > 0)
    pools.push({ arbitrary: fc.constantFrom(...context.foreignIds), weight: 2 });
  // A stream route must fail before it streams: never give it an id the caller may read.
  if (route.kind !== "sse" && context.ownIds.length > 0) {
    pools.push({ arbitrary: fc.constantFrom(...context.ownIds), weight: 5 });
  }
  if (route.auth === "operator" && context.operatorValues.length > 0) {
    pools.push({ arbitrary: fc.constantFrom(...context.operatorValues), weight: 3 });
  }
  return fc.oneof(...pools);
}

/** The route's path with each `:param` (and a trailing `*`) filled in. */
function pathArbitrary(route: FuzzRoute, context: FuzzContext): fc.Arbitrary<string> {
  const names = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1] ?? "");
  const wildcard = route.path.endsWith("*");
  const values = fc.tuple(
    fc.tuple(...names.map((name) => pathValue(route, name, context))),
    wildcard
      ? fc
          .array(
            fc.oneof(
              fc.constantFrom(...PATH_TRICKS),
              fc.uuid(),
              fc.constantFrom(...context.foreignIds, "images"),
            ),
            {
              minLength: 0,
              maxLength: 4,
            },
          )
          .map((segments) => segments.join("/"))
      : fc.constant(""),
  );
  const filled = values.map(([parameterValues, rest]) => {
    let index = 0;
    let path = route.path.replace(/:([A-Za-z0-9_]+)/g, () => parameterValues[index++] ?? "");
    if (wildcard) path = path.replace(/\*$/, rest);
    return path;
  });
  // Whole-path tricks: trailing and doubled slashes, dot segments, case.
  return fc
    .tuple(
      filled,
      fc.oneof(
        { arbitrary: fc.constant("none"), weight: 12 },
        {
          arbitrary: fc.constantFrom("trailing", "double", "dot", "upper", "dotdot", "encoded-slash"),
          weight: 3,
        },
      ),
    )
    .map(([path, trick]) => {
      switch (trick) {
        case "trailing":
          return `${path}/`;
        case "double":
          return path.replace(/\//g, "//");
        case "dot":
          return path.replace(/^\/([^/]+)/, "/$1/.");
        case "upper":
          return path.toUpperCase();
        case "dotdot":
          return `${path}/../${path.split("/").slice(1, 3).join("/")}`;
        case "encoded-slash":
          return path.replace(/\//g, "%2F").replace(/^%2F/, "/");
        default:
          return path;
      }
    });
}

/** A query string from the route's parameters, with duplicates, prototype keys and odd values. */
function queryArbitrary(route: FuzzRoute, context: FuzzContext): fc.Arbitrary<string> {
  const query = route.parameters.filter((parameter) => parameter.in === "query");
  const names = [...query.map((parameter) => parameter.name), "limit", "cursor"];
  const pair = fc.oneof(
    ...query.map((parameter) =>
      parameterValue(parameter.schema, context.resolve).map(
        (value) => `${parameter.name}=${encodeLoosely(value)}`,
      ),
    ),
    fc
      .constantFrom(...names)
      .chain((name) =>
        fc.constantFrom(
          `${name}=1&${name}=2`,
          `${name}[]=1`,
          `${name}[a]=1`,
          `${name}=`,
          name,
          `${name}=%ZZ`,
          `${name}=${"9".repeat(400)}`,
        ),
      ),
    fc.constantFrom(
      "__proto__[polluted]=1",
      "__proto__=1",
      "constructor[prototype][polluted]=1",
      "constructor=1",
      "hasOwnProperty=1",
      "limit=-1",
      "limit=0",
      "limit=1e400",
      "limit=100000000",
      "limit=NaN",
      "limit=0x10",
      "limit= 5",
      "cursor=AAAA",
      "cursor=%00",
      "cursor=!!!!",
      `cursor=${"A".repeat(64)}`,
      `cursor=${Buffer.from("00000000-0000-0000-0000-000000000000").toString("base64url")}`,
      `cursor=${"A".repeat(5_000)}`,
      "a=1&a=2&a=3",
      "&&&=&=",
      "%",
      "%E0%A4%A",
    ),
    fc.tuple(anyString, anyString).map(([key, value]) => `${encodeLoosely(key)}=${encodeLoosely(value)}`),
  );
  return fc
    .array(pair, { minLength: 0, maxLength: 4 })
    .map((pairs) => (pairs.length === 0 ? "" : `?${pairs.join("&")}`));
}

function authorizationArbitrary(
  route: FuzzRoute,
  context: FuzzContext,
): fc.Arbitrary<string | string[] | undefined> {
  const proper = route.auth === "operator" ? context.operatorAuthorization : `Bearer ${context.apiKey}`;
  const basicOf = (text: string) => `Basic ${Buffer.from(text).toString("base64")}`;
  return fc.oneof(
    { arbitrary: fc.constant(proper), weight: 10 },
    { arbitrary: fc.constant(undefined), weight: 2 },
    {
      arbitrary: fc.constantFrom(
        "Bearer",
        "Bearer ",
        "Bearer  ",
        `bearer ${context.apiKey}`,
        `BEARER ${context.apiKey}`,
        `Bearer ${context.apiKey} extra`,
        `Bearer ${context.apiKey}x`,
        `Bearer ${context.apiKey.slice(0, -1)}`,
        `Bearer\t${context.apiKey}`,
        `Token ${context.apiKey}`,
        context.apiKey,
        `Bearer ${"A".repeat(100_000)}`,
        `Bearer gq_${"a".repeat(5_000)}`,
        `Basic ${context.apiKey}`,
        context.operatorAuthorization,
        `Bearer ${context.operatorAuthorization}`,
        "Basic",
        "Basic !!!",
        "Basic ====",
        basicOf("operator"),
        basicOf("operator:"),
        basicOf(":"),
        basicOf(`operator:${"x".repeat(10_000)}`),
        basicOf("\u0000:\u0000"),
        `Basic ${"A".repeat(100_000)}`,
        "Digest username=operator",
        "",
      ),
      weight: 4,
    },
    { arbitrary: fc.constant<string[]>([proper, proper]), weight: 1 },
    {
      arbitrary: fc.constant<string[]>([`Bearer ${context.apiKey}`, context.operatorAuthorization]),
      weight: 1,
    },
    { arbitrary: anyString.map((value) => `Bearer ${value.replace(/[\r\n]/g, "")}`), weight: 1 },
  );
}

function extraHeadersArbitrary(): fc.Arbitrary<Record<string, string | string[]>> {
  const header = fc.oneof(
    fc.constantFrom<[string, string | string[]]>(
      ["idempotency-key", "x".repeat(10_000)],
      ["idempotency-key", ""],
      ["idempotency-key", " "],
      ["idempotency-key", "\u00e9\u00e9"],
      ["idempotency-key", ["a", "b"]],
      ["last-event-id", "garbage"],
      ["last-event-id", "-1"],
      ["last-event-id", "9".repeat(400)],
      ["last-event-id", "1e400"],
      ["last-event-id", "x".repeat(10_000)],
      ["last-event-id", ["1", "2"]],
      ["accept", "application/xml"],
      ["accept", "text/event-stream"],
      ["accept", "*/*;q=garbage"],
      ["accept", "application/json;q=0"],
      ["accept", ""],
      ["accept", "x".repeat(10_000)],
      ["accept-encoding", "gzip;q=2, br, zstd, *;q=-1"],
      ["accept-language", "x".repeat(5_000)],
      ["x-request-id", "x".repeat(10_000)],
      ["x-request-id", ""],
      ["x-forwarded-for", "not-an-ip, ::1, 999.999.999.999"],
      ["x-forwarded-proto", "gopher"],
      ["x-http-method-override", "DELETE"],
      ["if-none-match", '"garbage"'],
      ["range", "bytes=-1-2"],
      ["range", "bytes=999999999999-"],
      ["cookie", "a=%ZZ; __proto__=1"],
      ["expect", "100-continue"],
      ["origin", "null"],
      ["transfer-encoding", "chunked"],
    ),
    fc.tuple(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/),
      anyString.map((value) => value.replace(/[\r\n]/g, "").replaceAll("\u0000", "")),
    ),
  );
  return fc.array(header, { maxLength: 3 }).map((pairs) => Object.fromEntries(pairs));
}

/** A body and its content headers: mutated JSON, or bytes and encodings no JSON parser should choke on. */
function bodyArbitrary(
  route: FuzzRoute,
  context: FuzzContext,
): fc.Arbitrary<{ category: string; headers: Record<string, string>; payload?: string | Buffer }> {
  const json = (text: string | Buffer, category: string, headers: Record<string, string> = {}) => ({
    category,
    headers: { "content-type": "application/json", ...headers },
    payload: text,
  });
  const structured = route.body === undefined ? anyValue : mutatedBody(route.body, context.resolve);
  const safeStringify = (value: unknown) => {
    try {
      return JSON.stringify(value) ?? "null";
    } catch {
      return "null";
    }
  };
  return fc.oneof(
    { arbitrary: structured.map((value) => json(safeStringify(value), "body:schema-mutation")), weight: 10 },
    {
      arbitrary: fc
        .tuple(structured, fc.constantFrom(...ODD_NUMBER_TEXTS))
        .map(([value, number]) =>
          json(safeStringify(value).replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/i, number), "body:number-text"),
        ),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(...ODD_STRINGS).map((text) =>
        json(
          JSON.stringify({
            type: text,
            input: { prompt: text },
            email: text,
            name: text,
            provider: text,
            apiKey: text,
          }),
          "body:odd-strings",
        ),
      ),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(
        json(
          Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]),
          "encoding:invalid-utf8",
        ),
        json(Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"type":"text"}')]), "encoding:bom"),
        json(Buffer.from('{"a":"\\ud800"}'), "encoding:escaped-lone-surrogate"),
        json(Buffer.from('{"a":"\\u0000"}'), "encoding:escaped-nul"),
        json(
          Buffer.from(JSON.stringify({ type: "text", input: { prompt: "é" } }), "utf16le"),
          "encoding:utf16-as-utf8",
        ),
        json(
          Buffer.from(JSON.stringify({ type: "text", input: { prompt: "é" } }), "utf16le"),
          "encoding:charset-utf16",
          {
            "content-type": "application/json; charset=utf-16",
          },
        ),
        json(
          Buffer.from(JSON.stringify({ type: "text", input: { prompt: "é" } }), "latin1"),
          "encoding:charset-latin1",
          {
            "content-type": "application/json; charset=iso-8859-1",
          },
        ),
        json("{}", "encoding:charset-bogus", { "content-type": "application/json; charset=bogus-1" }),
        json("type=text&input=1", "encoding:form-as-json"),
        json("", "encoding:empty-json"),
        json("   ", "encoding:blank-json"),
        json("{} x", "encoding:trailing-garbage"),
        json('{"type":"text","type":"image"}', "encoding:duplicate-keys"),
        json("[]", "encoding:array-root"),
        json('"text"', "encoding:string-root"),
        json("null", "encoding:null-root"),
        json("0", "encoding:number-root"),
        json("{'a':1}", "encoding:single-quotes"),
        json('{"a":1,}', "encoding:trailing-comma"),
        json('{"a":NaN}', "encoding:nan-literal"),
        json('{"__proto__":{"polluted":1}}', "encoding:proto-key"),
        json('{"constructor":{"prototype":{"polluted":1}}}', "encoding:constructor-key"),
        json(gzipSync(Buffer.from("{}")), "encoding:gzip-without-header"),
        json(Buffer.from("\x1f\x8b\x08garbage"), "encoding:gzip-garbage", { "content-encoding": "gzip" }),
        json(gzipSync(Buffer.from("{}")), "encoding:real-gzip", { "content-encoding": "gzip" }),
        json("{}", "encoding:br-claimed", { "content-encoding": "br" }),
        json("{}", "encoding:unknown-encoding", { "content-encoding": "x-bogus, identity" }),
        json("{}", "encoding:vendor-json", { "content-type": "application/vnd.api+json" }),
        json("{}", "encoding:json-with-params", { "content-type": "application/json;;; ;=;" }),
        json("{}", "encoding:upper-json", { "content-type": "APPLICATION/JSON" }),
        json("{}", "encoding:content-type-list", { "content-type": "application/json, text/plain" }),
        {
          category: "encoding:text-plain",
          headers: { "content-type": "text/plain" },
          payload: '{"type":"text"}',
        },
        {
          category: "encoding:form",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          payload: "type=text&input[prompt]=hi",
        },
        {
          category: "encoding:multipart-no-boundary",
          headers: { "content-type": "multipart/form-data" },
          payload: "--x\r\n\r\n",
        },
        {
          category: "encoding:multipart-garbage",
          headers: { "content-type": "multipart/form-data; boundary=zzz" },
          payload:
            '--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG garbage\r\n--zzz--',
        },
        {
          category: "encoding:multipart-unterminated",
          headers: { "content-type": "multipart/form-data; boundary=zzz" },
          payload: '--zzz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        },
        { category: "encoding:no-content-type", headers: {}, payload: '{"type":"text"}' },
        {
          category: "encoding:octet-stream",
          headers: { "content-type": "application/octet-stream" },
          payload: Buffer.from([0, 1, 2, 255]),
        },
        { category: "encoding:empty-content-type", headers: { "content-type": "" }, payload: "{}" },
        {
          category: "encoding:garbage-content-type",
          headers: { "content-type": "\u00ff/\u00fe" },
          payload: "{}",
        },
      ),
      weight: 4,
    },
    {
      arbitrary: fc
        .integer({ min: 50, max: 2_000 })
        .map((depth) => json(nestedJson(depth, depth % 2 === 0 ? "object" : "array"), "body:nested")),
      weight: 1,
    },
    {
      arbitrary: fc
        .integer({ min: 1_000, max: 200_000 })
        .map((bytes) => json(jsonOfSize(bytes), "body:large")),
      weight: 1,
    },
    { arbitrary: fc.constant({ category: "body:none", headers: {} }), weight: 2 },
  );
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Generated requests for one route: path, query, headers, auth and body tricks combined. */
export function requestArbitrary(route: FuzzRoute, context: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const method = fc.oneof(
    { arbitrary: fc.constant(route.method), weight: 20 },
    {
      arbitrary: fc.constantFrom("HEAD", "OPTIONS", "TRACE", "PUT", "PATCH", "DELETE", "POST", "GET"),
      weight: 1,
    },
  );
  return fc
    .record({
      method,
      path: pathArbitrary(route, context),
      query: fc.oneof(
        { arbitrary: fc.constant(""), weight: 2 },
        { arbitrary: queryArbitrary(route, context), weight: 1 },
      ),
      authorization: authorizationArbitrary(route, context),
      extra: extraHeadersArbitrary(),
      body: bodyArbitrary(route, context),
    })
    .map(({ method, path, query, authorization, extra, body }) => {
      const withBody = BODY_METHODS.has(method);
      const headers: Record<string, string | string[]> = { ...extra, ...(withBody ? body.headers : {}) };
      if (authorization !== undefined) headers.authorization = authorization;
      else delete headers.authorization;
      return {
        category: withBody ? body.category : "no-body",
        method,
        url: `${path}${query}`,
        headers,
        ...(withBody && body.payload !== undefined ? { payload: body.payload } : {}),
      };
    });
}

/**
 * Requests every route with a body gets once, outside the random runs: the
 * expensive ones (deep nesting, bodies around the limit, huge arrays).
 */
export function heavyRequests(route: FuzzRoute, context: FuzzContext): FuzzRequest[] {
  const path = route.path
    .replace(/:([A-Za-z0-9_]+)/g, () => context.foreignIds[0] ?? "x")
    .replace(/\*$/, "x");
  const authorization =
    route.auth === "operator" ? context.operatorAuthorization : `Bearer ${context.apiKey}`;
  const limit = context.bodyLimitBytes;
  const base = { method: route.method, url: path };
  const json = (
    category: string,
    payload: string | Buffer,
    headers: Record<string, string> = {},
  ): FuzzRequest => ({
    ...base,
    category,
    headers: { authorization, "content-type": "application/json", ...headers },
    payload,
  });
  return [
    json("heavy:nested-10k-object", nestedJson(10_000, "object")),
    json("heavy:nested-10k-array", nestedJson(10_000, "array")),
    json("heavy:nested-100k-object", nestedJson(100_000, "object")),
    json(
      "heavy:nested-inside-fields",
      `{"type":"text","input":{"prompt":${nestedJson(10_000, "array")}},"metadata":${nestedJson(10_000)},"items":${nestedJson(10_000, "array")},"name":${nestedJson(10_000)}}`,
    ),
    json("heavy:just-under-limit", jsonOfSize(limit - 64, { type: "text" })),
    json("heavy:just-over-limit", jsonOfSize(limit + 64, { type: "text" })),
    json(
      "heavy:1mb-string-field",
      JSON.stringify({ type: "text", input: { prompt: "x".repeat(1_000_000) } }),
    ),
    json(
      "heavy:huge-array",
      `{"items":[${Array(200_000).fill("0").join(",")}],"input":{"messages":[${Array(50_000).fill('{"role":"user","content":"x"}').join(",")}]}}`,
    ),
    json(
      "heavy:huge-object",
      `{${Array.from({ length: 50_000 }, (_, index) => `"k${index}":${index}`).join(",")}}`,
    ),
    json(
      "heavy:invalid-utf8-1mb",
      Buffer.concat([Buffer.from('{"a":"'), Buffer.alloc(limit - 100, 0xff), Buffer.from('"}')]),
    ),
    json("heavy:gzip-bomb-claimed", Buffer.alloc(10_000, 0x1f), { "content-encoding": "gzip" }),
    {
      ...json("heavy:over-limit-unauthenticated", jsonOfSize(limit * 2)),
      headers: { "content-type": "application/json" },
    },
  ];
}
