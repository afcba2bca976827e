import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createPrismaClient } from "../client.ts";
import { createTestDatabase, type TestDatabase } from "./test-database.ts";

describe("createTestDatabase", () => {
  const databases: TestDatabase[] = [];

  afterEach(async () => {
    for (const database of databases.splice(0)) await database.drop();
  });

  it("gives each call its own migrated schema", async () => {
    const first = await createTestDatabase();
    const second = await createTestDatabase();
    databases.push(first, second);

    expect(first.schema).toMatch(/^t_[0-9a-f]{16}$/);
    expect(second.schema).not.toBe(first.schema);
    expect(first.url).toContain(`schema=${first.schema}`);
  });

  it("returns a URL that points pg's connections at the schema", async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ search_path: string; users: number }>(
        "SELECT current_setting('search_path') AS search_path, (SELECT count(*)::int FROM users) AS users",
      );
      expect(rows).toEqual([{ search_path: database.schema, users: 0 }]);
    } finally {
      await client.end();
    }
  });

  it("returns a URL that points Prisma's model and raw queries at the schema", async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const prisma = createPrismaClient({ connectionString: database.url });
    try {
      await prisma.user.create({
        data: { id: crypto.randomUUID(), email: "someone@example.com", updatedAt: new Date() },
      });
      const raw = await prisma.$queryRawUnsafe<{ count: number }[]>(
        "SELECT count(*)::int AS count FROM users",
      );
      expect(raw).toEqual([{ count: 1 }]);
      expect(await prisma.user.count()).toBe(1);
    } finally {
      await prisma.$disconnect();
    }
  });

  it("drops the schema and everything in it", async () => {
    const database = await createTestDatabase();
    await database.drop();
    await database.drop();

    const client = new pg.Client({
      connectionString: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/test",
    });
    await client.connect();
    try {
      const { rowCount } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [
        database.schema,
      ]);
      expect(rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });
});
