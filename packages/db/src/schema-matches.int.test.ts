// Proves that applying prisma/migrations yields exactly the database
// prisma/schema.prisma describes. `prisma migrate dev` cannot run here (no schema
// engine binary), so migrations are written by hand; this test is what catches a
// migration that drifts from the schema. The schema is read through Prisma's own
// parser (the DMMF), the database through the Postgres catalog, both are reduced to
// the same plain shape, and a mismatch fails with vitest's object diff.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type GetDMMFError, getDMMF } from "@prisma/get-dmmf";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./testing/index.ts";

type Document = Exclude<ReturnType<typeof getDMMF>, GetDMMFError>;
type Model = Document["datamodel"]["models"][number];
type Field = Model["fields"][number];
type Enum = Document["datamodel"]["enums"][number];

const SCHEMA_PATH = fileURLToPath(new URL("../../../prisma/schema.prisma", import.meta.url));

/** The table Prisma's migration runner owns; it is not part of the data model. */
const MIGRATIONS_TABLE = "_prisma_migrations";

/** Postgres' identifier limit; Prisma shortens longer convention names, which this test does not model. */
const MAX_IDENTIFIER_LENGTH = 63;

interface ColumnShape {
  /** `format_type` of the column, or `enum <type name>` for enum columns. */
  type: string;
  nullable: boolean;
  /** The default expression as Postgres prints it, or null. */
  default: string | null;
}

interface IndexShape {
  /** Column names in index order, with ` DESC` on descending ones. */
  columns: string[];
  unique: boolean;
  primary: boolean;
  method: string;
}

interface ForeignKeyShape {
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

interface TableShape {
  columns: Record<string, ColumnShape>;
  indexes: Record<string, IndexShape>;
  foreignKeys: Record<string, ForeignKeyShape>;
  /** Every constraint, as `<name> <kind>`: catches CHECK or UNIQUE constraints Prisma would not create. */
  constraints: string[];
}

interface DatabaseShape {
  tables: Record<string, TableShape>;
  enums: Record<string, string[]>;
  /** Sequences, views and other relations; Prisma creates none for this schema. */
  otherRelations: string[];
}

/** Object keys sorted, so diffs line up regardless of declaration or catalog order. */
function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => a.localeCompare(b)));
}

/** Quotes an identifier the way Postgres prints it in expressions. */
function quoteIdentifier(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

// ---------------------------------------------------------------- expected (schema)

function tableName(model: Model): string {
  return model.dbName ?? model.name;
}

function columnName(field: Field): string {
  return field.dbName ?? field.name;
}

function enumName(prismaEnum: Enum): string {
  return prismaEnum.dbName ?? prismaEnum.name;
}

/** The Postgres type Prisma's migration engine gives a scalar field. */
function expectedColumnType(field: Field, enums: readonly Enum[]): string {
  if (field.kind === "enum") {
    const prismaEnum = enums.find((candidate) => candidate.name === field.type);
    if (prismaEnum === undefined) throw new Error(`enum ${field.type} is not in the DMMF`);
    return `enum ${enumName(prismaEnum)}${field.isList ? "[]" : ""}`;
  }
  const base = field.nativeType ? nativeColumnType(field.nativeType) : defaultColumnType(field.type);
  return `${base}${field.isList ? "[]" : ""}`;
}

/** Prisma's default mapping of scalar types for PostgreSQL. */
function defaultColumnType(prismaType: string): string {
  switch (prismaType) {
    case "String":
      return "text";
    case "Int":
      return "integer";
    case "BigInt":
      return "bigint";
    case "Float":
      return "double precision";
    case "Decimal":
      return "numeric(65,30)";
    case "Boolean":
      return "boolean";
    case "DateTime":
      return "timestamp(3) without time zone";
    case "Json":
      return "jsonb";
    case "Bytes":
      return "bytea";
    default:
      throw new Error(`this test does not know how Prisma maps ${prismaType}; extend defaultColumnType`);
  }
}

/** The `@db.*` attributes, printed as Postgres' format_type prints them. */
function nativeColumnType([name, args]: readonly [string, readonly string[]]): string {
  const precision = args.length > 0 ? `(${args.join(",")})` : "";
  switch (name) {
    case "Uuid":
      return "uuid";
    case "Text":
      return "text";
    case "VarChar":
      return `character varying${precision}`;
    case "Char":
      return `character${precision}`;
    case "Integer":
      return "integer";
    case "SmallInt":
      return "smallint";
    case "BigInt":
      return "bigint";
    case "Boolean":
      return "boolean";
    case "JsonB":
      return "jsonb";
    case "Json":
      return "json";
    case "Timestamptz":
      return `timestamp${precision} with time zone`;
    case "Timestamp":
      return `timestamp${precision} without time zone`;
    case "Date":
      return "date";
    case "Decimal":
      return `numeric${precision}`;
    default:
      throw new Error(`this test does not know @db.${name}; extend nativeColumnType`);
  }
}

/** The column default Postgres should hold for a field's `@default`, or null. */
function expectedColumnDefault(field: Field, enums: readonly Enum[]): string | null {
  if (!field.hasDefaultValue || field.default === undefined) return null;
  const value = field.default;
  if (typeof value === "object" && !Array.isArray(value)) {
    const call = value as { name: string; args: readonly (string | number)[] };
    switch (call.name) {
      case "now":
        return "CURRENT_TIMESTAMP";
      // Generated by the Prisma client, not the database.
      case "uuid":
      case "cuid":
      case "nanoid":
      case "ulid":
        return null;
      case "dbgenerated":
        return String(call.args[0] ?? "");
      default:
        throw new Error(`this test does not know @default(${call.name}()); extend expectedColumnDefault`);
    }
  }
  if (Array.isArray(value)) throw new Error("list defaults are not supported by this test");
  if (field.kind === "enum") {
    const prismaEnum = enums.find((candidate) => candidate.name === field.type)!;
    const dbValue = prismaEnum.values.find((candidate) => candidate.name === value)?.dbName ?? value;
    return `'${dbValue}'::${quoteIdentifier(enumName(prismaEnum))}`;
  }
  if (typeof value === "string") return `'${value.replaceAll("'", "''")}'::text`;
  return String(value);
}

/** Prisma's referential actions, with its defaults for relations that name none. */
function expectedReferentialActions(field: Field, model: Model): { onDelete: string; onUpdate: string } {
  const fromFields = (field.relationFromFields ?? []).map(
    (name) => model.fields.find((candidate) => candidate.name === name)!,
  );
  const optional = fromFields.some((candidate) => !candidate.isRequired);
  return {
    onDelete: field.relationOnDelete ?? (optional ? "SetNull" : "Restrict"),
    onUpdate: field.relationOnUpdate ?? "Cascade",
  };
}

function shortEnough(name: string): string {
  if (name.length > MAX_IDENTIFIER_LENGTH) {
    throw new Error(
      `${name} exceeds ${MAX_IDENTIFIER_LENGTH} characters; Prisma would shorten it, this test cannot`,
    );
  }
  return name;
}

function expectedShape(document: Document): DatabaseShape {
  const { models, enums, indexes } = document.datamodel;
  const modelByName = new Map(models.map((model) => [model.name, model]));
  const tables = new Map<string, TableShape>();

  for (const model of models) {
    const table = tableName(model);
    const columns = new Map<string, ColumnShape>();
    const foreignKeys = new Map<string, ForeignKeyShape>();
    for (const field of model.fields) {
      if (field.kind === "scalar" || field.kind === "enum") {
        columns.set(columnName(field), {
          type: expectedColumnType(field, enums),
          // Prisma's migrations leave scalar lists (`String[]`) nullable: `TEXT[]` without NOT NULL.
          nullable: field.isList || !field.isRequired,
          default: expectedColumnDefault(field, enums),
        });
        continue;
      }
      if (field.kind !== "object" || (field.relationFromFields ?? []).length === 0) continue;
      const target = modelByName.get(field.type)!;
      const fromColumns = field.relationFromFields!.map((name) =>
        columnName(model.fields.find((candidate) => candidate.name === name)!),
      );
      const toColumns = field.relationToFields!.map((name) =>
        columnName(target.fields.find((candidate) => candidate.name === name)!),
      );
      foreignKeys.set(shortEnough(`${table}_${fromColumns.join("_")}_fkey`), {
        columns: fromColumns,
        referencedTable: tableName(target),
        referencedColumns: toColumns,
        ...expectedReferentialActions(field, model),
      });
    }

    const tableIndexes = new Map<string, IndexShape>();
    const constraints: string[] = [];
    for (const index of indexes.filter((candidate) => candidate.model === model.name)) {
      const indexColumns = index.fields.map((indexField) => {
        const column = columnName(model.fields.find((candidate) => candidate.name === indexField.name)!);
        return indexField.sortOrder === "desc" ? `${column} DESC` : column;
      });
      const plainColumns = index.fields.map((indexField) =>
        columnName(model.fields.find((candidate) => candidate.name === indexField.name)!),
      );
      const conventionalName =
        index.type === "id"
          ? `${table}_pkey`
          : `${table}_${plainColumns.join("_")}_${index.type === "unique" ? "key" : "idx"}`;
      const name = shortEnough(index.dbName ?? conventionalName);
      tableIndexes.set(name, {
        columns: indexColumns,
        unique: index.type === "id" || index.type === "unique",
        primary: index.type === "id",
        method: (index.algorithm ?? "BTree").toLowerCase(),
      });
      if (index.type === "id") constraints.push(`${name} primary key`);
    }
    for (const name of foreignKeys.keys()) constraints.push(`${name} foreign key`);

    tables.set(table, {
      columns: sortedRecord(columns),
      indexes: sortedRecord(tableIndexes),
      foreignKeys: sortedRecord(foreignKeys),
      constraints: constraints.sort(),
    });
  }

  return {
    tables: sortedRecord(tables),
    enums: sortedRecord(
      enums.map((prismaEnum) => [
        enumName(prismaEnum),
        prismaEnum.values.map((value) => value.dbName ?? value.name),
      ]),
    ),
    otherRelations: [],
  };
}

// ---------------------------------------------------------------- actual (database)

const CONSTRAINT_KINDS: Record<string, string> = {
  p: "primary key",
  f: "foreign key",
  u: "unique",
  c: "check",
  x: "exclusion",
  t: "trigger",
};

const REFERENTIAL_ACTIONS: Record<string, string> = {
  a: "NoAction",
  r: "Restrict",
  c: "Cascade",
  n: "SetNull",
  d: "SetDefault",
};

async function actualShape(client: pg.Client, schema: string): Promise<DatabaseShape> {
  const columns = await client.query<{
    table: string;
    column: string;
    type: string;
    nullable: boolean;
    default: string | null;
  }>(
    `SELECT c.relname AS table, a.attname AS column,
            CASE WHEN t.typtype = 'e' THEN 'enum ' || t.typname
                 WHEN et.typtype = 'e' THEN 'enum ' || et.typname || '[]'
                 ELSE format_type(a.atttypid, a.atttypmod) END AS type,
            NOT a.attnotnull AS nullable,
            pg_get_expr(d.adbin, d.adrelid) AS default
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
    [schema],
  );
  const indexes = await client.query<{
    table: string;
    name: string;
    columns: string[];
    unique: boolean;
    primary: boolean;
    method: string;
    partial: boolean;
    expression: boolean;
  }>(
    `SELECT t.relname AS table, i.relname AS name, ix.indisunique AS unique, ix.indisprimary AS primary,
            am.amname AS method, ix.indpred IS NOT NULL AS partial, ix.indexprs IS NOT NULL AS expression,
            ARRAY(
              SELECT a.attname || CASE WHEN (ix.indoption[k.ordinal - 1] & 1) = 1 THEN ' DESC' ELSE '' END
                FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ordinal)
                JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
               ORDER BY k.ordinal
            ) AS columns
       FROM pg_index ix
       JOIN pg_class i ON i.oid = ix.indexrelid
       JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_am am ON am.oid = i.relam
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1`,
    [schema],
  );
  const constraints = await client.query<{
    table: string;
    name: string;
    kind: string;
    columns: string[] | null;
    referenced_table: string | null;
    referenced_columns: string[] | null;
    on_delete: string;
    on_update: string;
  }>(
    `SELECT t.relname AS table, con.conname AS name, con.contype AS kind,
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ordinal)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                   ORDER BY k.ordinal) AS columns,
            rt.relname AS referenced_table,
            ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ordinal)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                   ORDER BY k.ordinal) AS referenced_columns,
            con.confdeltype AS on_delete, con.confupdtype AS on_update
       FROM pg_constraint con
       JOIN pg_class t ON t.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_class rt ON rt.oid = con.confrelid
      WHERE n.nspname = $1 AND con.contype <> 'n'`,
    [schema],
  );
  const tables = await client.query<{ name: string; kind: string }>(
    `SELECT c.relname AS name, c.relkind AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind NOT IN ('i', 'I')`,
    [schema],
  );
  const enums = await client.query<{ name: string; values: string[] }>(
    `SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS values
       FROM pg_type t
       JOIN pg_namespace n ON n.oid = t.typnamespace
       JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE n.nspname = $1
      GROUP BY t.typname`,
    [schema],
  );

  const tableShapes = new Map<string, TableShape>();
  const otherRelations: string[] = [];
  for (const relation of tables.rows) {
    if (relation.name === MIGRATIONS_TABLE) continue;
    if (relation.kind !== "r" && relation.kind !== "p") {
      otherRelations.push(`${relation.name} (relkind ${relation.kind})`);
      continue;
    }
    const tableColumns = columns.rows.filter((row) => row.table === relation.name);
    const tableIndexes = indexes.rows.filter((row) => row.table === relation.name);
    const tableConstraints = constraints.rows.filter((row) => row.table === relation.name);
    tableShapes.set(relation.name, {
      columns: sortedRecord(
        tableColumns.map((row) => [
          row.column,
          { type: row.type, nullable: row.nullable, default: row.default },
        ]),
      ),
      indexes: sortedRecord(
        tableIndexes.map((row) => [
          row.name,
          {
            // Partial and expression indexes have no Prisma equivalent; make them visible in the diff.
            columns: [
              ...row.columns,
              ...(row.partial ? ["<partial>"] : []),
              ...(row.expression ? ["<expression>"] : []),
            ],
            unique: row.unique,
            primary: row.primary,
            method: row.method,
          },
        ]),
      ),
      foreignKeys: sortedRecord(
        tableConstraints
          .filter((row) => row.kind === "f")
          .map((row) => [
            row.name,
            {
              columns: row.columns ?? [],
              referencedTable: row.referenced_table ?? "",
              referencedColumns: row.referenced_columns ?? [],
              onDelete: REFERENTIAL_ACTIONS[row.on_delete] ?? row.on_delete,
              onUpdate: REFERENTIAL_ACTIONS[row.on_update] ?? row.on_update,
            },
          ]),
      ),
      constraints: tableConstraints
        .map((row) => `${row.name} ${CONSTRAINT_KINDS[row.kind] ?? row.kind}`)
        .sort(),
    });
  }
  return {
    tables: sortedRecord(tableShapes),
    enums: sortedRecord(enums.rows.map((row) => [row.name, row.values])),
    otherRelations: otherRelations.sort(),
  };
}

// ---------------------------------------------------------------- the test

/** One aspect of every table, so a failure lists each differing table, not only the first. */
function aspect<K extends keyof TableShape>(shape: DatabaseShape, key: K): Record<string, TableShape[K]> {
  return sortedRecord(Object.entries(shape.tables).map(([table, tableShape]) => [table, tableShape[key]]));
}

describe("the migrations in prisma/migrations", () => {
  let database: TestDatabase;
  let client: pg.Client;
  let expected: DatabaseShape;
  let actual: DatabaseShape;

  beforeAll(async () => {
    const document = getDMMF({ datamodel: await readFile(SCHEMA_PATH, "utf8") });
    if ("type" in document) throw new Error(`prisma/schema.prisma does not parse: ${document.reason}`);
    expected = expectedShape(document);

    database = await createTestDatabase();
    // The URL sets the search_path to the test schema, so pg_get_expr prints enum
    // casts unqualified (`'basic'::"Plan"`), as the schema-independent expectation does.
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    actual = await actualShape(client, database.schema);
  });

  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it("create a table for every model and no other", () => {
    expect(Object.keys(actual.tables)).toEqual(Object.keys(expected.tables));
    expect(actual.otherRelations).toEqual(expected.otherRelations);
  });

  it("give every table exactly the schema's columns, with their types, nullability and defaults", () => {
    expect(aspect(actual, "columns")).toEqual(aspect(expected, "columns"));
  });

  it("create every @id, @unique, @@unique and @@index under Prisma's names, and no other index", () => {
    expect(aspect(actual, "indexes")).toEqual(aspect(expected, "indexes"));
  });

  it("create a foreign key with the schema's referential actions for every relation", () => {
    expect(aspect(actual, "foreignKeys")).toEqual(aspect(expected, "foreignKeys"));
  });

  it("create no constraint beyond primary and foreign keys", () => {
    expect(aspect(actual, "constraints")).toEqual(aspect(expected, "constraints"));
  });

  it("create every enum with the schema's values in order, and no other", () => {
    expect(actual.enums).toEqual(expected.enums);
  });

  it("match the schema as a whole", () => {
    // One comparison over everything, so a failure shows the full picture at once.
    expect(actual).toEqual(expected);
  });
});
