import fc from "fast-check";
import { anyString, anyValue, ODD_NUMBERS } from "./hostile-values.ts";
import type { JsonSchema } from "./route-catalog.ts";

/** Resolves `#/components/schemas/<name>` references against the OpenAPI document. */
export type SchemaResolver = (schema: JsonSchema) => JsonSchema;

/** A resolver for the OpenAPI document's component schemas. */
export function schemaResolver(components: Record<string, JsonSchema>): SchemaResolver {
  return (schema) => {
    let current = schema;
    for (let hops = 0; hops < 10 && typeof current.$ref === "string"; hops += 1) {
      const name = current.$ref.replace(/^#\/components\/schemas\//, "");
      current = components[name] ?? {};
    }
    return current;
  };
}

function patternArbitrary(pattern: string): fc.Arbitrary<string> {
  try {
    return fc.stringMatching(new RegExp(pattern), { size: "xsmall" });
  } catch {
    return fc.string({ maxLength: 10 });
  }
}

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === "email") return fc.emailAddress();
  if (schema.format === "date-time") {
    return fc
      .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
      .map((date) => date.toISOString());
  }
  if (schema.format === "uri" || schema.format === "url") return fc.webUrl();
  if (schema.format === "uuid") return fc.uuid();
  if (typeof schema.pattern === "string") return patternArbitrary(schema.pattern);
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  const maxLength = typeof schema.maxLength === "number" ? Math.min(schema.maxLength, 40) : 20;
  return fc.string({ minLength: Math.min(minLength, maxLength), maxLength });
}

/**
 * Values that (mostly) satisfy `schema`: the starting point the mutations
 * below break one field at a time, so the fuzzer gets past the first check.
 */
export function validish(schema: JsonSchema, resolve: SchemaResolver, depth = 0): fc.Arbitrary<unknown> {
  const resolved = resolve(schema);
  if (depth > 6) return fc.constant(null);
  if ("const" in resolved) return fc.constant(resolved.const);
  if (Array.isArray(resolved.enum) && resolved.enum.length > 0) return fc.constantFrom(...resolved.enum);
  for (const key of ["oneOf", "anyOf"] as const) {
    const branches = resolved[key];
    if (Array.isArray(branches) && branches.length > 0) {
      return fc.oneof(...(branches as JsonSchema[]).map((branch) => validish(branch, resolve, depth + 1)));
    }
  }
  if (Array.isArray(resolved.allOf) && resolved.allOf.length > 0) {
    return validish(resolved.allOf[0] as JsonSchema, resolve, depth + 1);
  }
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  switch (type) {
    case "string":
      return stringArbitrary(resolved);
    case "integer": {
      const min = typeof resolved.minimum === "number" ? resolved.minimum : 0;
      const max = typeof resolved.maximum === "number" ? resolved.maximum : min + 1_000;
      return fc.integer({ min: Math.ceil(min), max: Math.floor(Math.min(max, Number.MAX_SAFE_INTEGER)) });
    }
    case "number": {
      const min = typeof resolved.minimum === "number" ? resolved.minimum : 0;
      const max = typeof resolved.maximum === "number" ? resolved.maximum : min + 1_000;
      return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
    }
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const items = (resolved.items as JsonSchema | undefined) ?? {};
      const minItems = typeof resolved.minItems === "number" ? resolved.minItems : 0;
      return fc.array(validish(items, resolve, depth + 1), {
        minLength: Math.min(minItems, 3),
        maxLength: Math.max(Math.min(minItems, 3), 3),
      });
    }
    case "object": {
      const properties = (resolved.properties as Record<string, JsonSchema> | undefined) ?? {};
      const required = new Set((resolved.required as string[] | undefined) ?? []);
      const fields: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, property] of Object.entries(properties))
        fields[name] = validish(property, resolve, depth + 1);
      return fc.record(fields, { requiredKeys: [...required].filter((name) => name in fields) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A value of every JSON kind except the one `schema` asks for. */
export function wrongType(schema: JsonSchema, resolve: SchemaResolver): fc.Arbitrary<unknown> {
  const type = resolve(schema).type;
  const candidates: Array<[string, fc.Arbitrary<unknown>]> = [
    ["string", anyString],
    ["number", fc.constantFrom(...ODD_NUMBERS)],
    ["integer", fc.constantFrom(1.5, -1, 2 ** 53)],
    ["boolean", fc.boolean()],
    ["null", fc.constant(null)],
    ["array", fc.array(anyValue, { maxLength: 3 })],
    ["object", fc.dictionary(anyString, anyValue, { maxKeys: 3 })],
  ];
  const others = candidates.filter(([name]) => name !== type).map(([, arbitrary]) => arbitrary);
  return fc.oneof(...others);
}

type Path = Array<string | number>;

/** Every path into a JSON value (objects and arrays), the root included. */
function pathsOf(value: unknown, prefix: Path = [], out: Path[] = [], depth = 0): Path[] {
  out.push(prefix);
  if (depth > 8) return out;
  if (Array.isArray(value)) {
    value.slice(0, 5).forEach((item, index) => {
      pathsOf(item, [...prefix, index], out, depth + 1);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) pathsOf(item, [...prefix, key], out, depth + 1);
  }
  return out;
}

/** The schema at `path` inside `schema`, following properties, items and the first matching branch. */
function schemaAt(schema: JsonSchema, path: Path, resolve: SchemaResolver): JsonSchema {
  let current = resolve(schema);
  for (const step of path) {
    const branches = (current.oneOf ?? current.anyOf) as JsonSchema[] | undefined;
    if (branches !== undefined) current = resolve(branches[0] ?? {});
    if (typeof step === "number") current = resolve((current.items as JsonSchema | undefined) ?? {});
    else current = resolve((current.properties as Record<string, JsonSchema> | undefined)?.[step] ?? {});
  }
  return current;
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function setAt(
  root: unknown,
  path: Path,
  update: (parent: Record<string | number, unknown>, key: string | number) => void,
): unknown {
  if (path.length === 0) return root;
  const copy = clone(root) as Record<string | number, unknown>;
  let parent = copy;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  update(parent, path[path.length - 1] as string | number);
  return copy;
}

/** One mutation of a body: a field of the wrong type, a missing field, an extra field, or a hostile value. */
export type Mutation = (value: unknown) => fc.Arbitrary<unknown>;

/**
 * Bodies for a route with a JSON body schema: a valid-ish body with one to
 * three fields broken (wrong type, removed, extra key, hostile value, or the
 * whole body replaced).
 */
export function mutatedBody(schema: JsonSchema, resolve: SchemaResolver): fc.Arbitrary<unknown> {
  const mutateOnce = (value: unknown): fc.Arbitrary<unknown> => {
    const paths = pathsOf(value);
    return fc.constantFrom(...paths).chain((path) => {
      const fieldSchema = schemaAt(schema, path, resolve);
      const options: fc.Arbitrary<unknown>[] = [
        wrongType(fieldSchema, resolve).map((bad) =>
          path.length === 0 ? bad : setAt(value, path, (parent, key) => (parent[key] = bad)),
        ),
        anyValue.map((bad) =>
          path.length === 0 ? bad : setAt(value, path, (parent, key) => (parent[key] = bad)),
        ),
      ];
      if (path.length > 0) {
        options.push(
          fc.constant(
            setAt(value, path, (parent, key) => {
              if (Array.isArray(parent)) parent.splice(Number(key), 1);
              else delete parent[key];
            }),
          ),
        );
      }
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        options.push(
          fc.tuple(anyString, anyValue).map(([key, extra]) => {
            const copy = clone(value) as Record<string, unknown>;
            Object.defineProperty(copy, key, {
              value: extra,
              enumerable: true,
              writable: true,
              configurable: true,
            });
            return copy;
          }),
        );
      }
      return fc.oneof(...options);
    });
  };
  return validish(schema, resolve).chain((valid) =>
    fc.oneof(
      { arbitrary: fc.constant(valid), weight: 1 },
      { arbitrary: mutateOnce(valid), weight: 6 },
      { arbitrary: mutateOnce(valid).chain(mutateOnce), weight: 3 },
      { arbitrary: mutateOnce(valid).chain(mutateOnce).chain(mutateOnce), weight: 1 },
    ),
  );
}

/** Values for a query, path or header parameter: valid-ish, or any of the hostile strings. */
export function parameterValue(schema: JsonSchema, resolve: SchemaResolver): fc.Arbitrary<string> {
  return fc.oneof(
    {
      arbitrary: validish(schema, resolve).map((value) =>
        typeof value === "string" ? value : (JSON.stringify(value) ?? ""),
      ),
      weight: 2,
    },
    { arbitrary: anyString, weight: 2 },
    {
      arbitrary: fc.constantFrom("-1", "0", "1e400", "NaN", "-0", "1.5", "99999999999999999999", "[]", "{}"),
      weight: 1,
    },
  );
}
