type JsonObject = Record<string, unknown>;

const REF_PREFIX = "#/components/schemas/";
const EXAMPLE_ID = "0193a8f2-7c41-7d2e-9a6b-3f1e2d4c5b6a";
const EXAMPLE_TIME = "2026-12-03T16:00:00.000Z";

function stringExample(schema: JsonObject, name: string | undefined): string {
  switch (schema.format) {
    case "date-time":
      return EXAMPLE_TIME;
    case "date":
      return EXAMPLE_TIME.slice(0, 10);
    case "uri":
    case "url":
      return "https://genq.example.com/hooks/genq";
    case "email":
      return "ada@example.com";
    case "uuid":
      return EXAMPLE_ID;
  }
  if (name !== undefined && /(^id$|Id$)/.test(name)) return EXAMPLE_ID;
  if (name !== undefined && /At$/.test(name)) return EXAMPLE_TIME;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  return name === undefined ? "text".padEnd(minLength, "x") : name.padEnd(minLength, "x");
}

/**
 * An example value built from a JSON Schema, for request bodies and responses whose schema
 * has no hand-written `examples`: each property with a plausible value (a schema's own
 * example where a component has one). A unit test validates every example against its schema.
 */
export function synthesizeExample(
  schema: unknown,
  schemas: Record<string, unknown>,
  name?: string,
  depth = 0,
): unknown {
  if (typeof schema !== "object" || schema === null || depth > 12) return null;
  const node = schema as JsonObject;
  if (Array.isArray(node.examples) && node.examples.length > 0) return node.examples[0];
  if (typeof node.$ref === "string" && node.$ref.startsWith(REF_PREFIX)) {
    return synthesizeExample(schemas[node.$ref.slice(REF_PREFIX.length)], schemas, name, depth + 1);
  }
  if ("const" in node) return node.const;
  if (Array.isArray(node.enum)) return node.enum[0];
  for (const keyword of ["oneOf", "anyOf"] as const) {
    const branches = node[keyword];
    if (Array.isArray(branches)) {
      const branch = branches.find((candidate) => (candidate as JsonObject)?.type !== "null") ?? branches[0];
      return synthesizeExample(branch, schemas, name, depth + 1);
    }
  }
  if (Array.isArray(node.allOf)) {
    return Object.assign({}, ...node.allOf.map((part) => synthesizeExample(part, schemas, name, depth + 1)));
  }
  const type = Array.isArray(node.type) ? node.type.find((candidate) => candidate !== "null") : node.type;
  switch (type) {
    case "object": {
      const properties = (node.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(
        Object.entries(properties).map(([key, property]) => [
          key,
          synthesizeExample(property, schemas, key, depth + 1),
        ]),
      );
    }
    case "array":
      return node.items === undefined ? [] : [synthesizeExample(node.items, schemas, name, depth + 1)];
    case "string":
      return stringExample(node, name);
    case "integer":
    case "number": {
      // zod prints the safe-integer range as bounds: 0 unless the bounds exclude it.
      const minimum = typeof node.exclusiveMinimum === "number" ? node.exclusiveMinimum + 1 : node.minimum;
      if (typeof minimum === "number" && minimum > 0) return minimum;
      if (typeof node.maximum === "number" && node.maximum < 0) return node.maximum;
      return 0;
    }
    case "boolean":
      return false;
    case "null":
      return null;
    default:
      return type === undefined && node.properties !== undefined
        ? synthesizeExample({ ...node, type: "object" }, schemas, name, depth + 1)
        : null;
  }
}
