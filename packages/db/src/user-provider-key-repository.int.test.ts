import { randomBytes } from "node:crypto";
import { createSecretBox, type SecretBox } from "@genq/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountRepository } from "./account-repository.ts";
import { createPrismaClient, type Database } from "./client.ts";
import { createTestDatabase, type TestDatabase } from "./testing/index.ts";
import { providerKeyHint, UserProviderKeyRepository } from "./user-provider-key-repository.ts";

const k1 = { id: "k1", key: randomBytes(32) };
const k2 = { id: "k2", key: randomBytes(32) };

let database: TestDatabase;
let db: Database;
let accounts: AccountRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createPrismaClient({ connectionString: database.url, maxConnections: 4 });
  accounts = new AccountRepository({ db });
});

afterAll(async () => {
  await db?.$disconnect();
  await database?.drop();
});

function repository(box: SecretBox): UserProviderKeyRepository {
  return new UserProviderKeyRepository({ db, secretBox: box });
}

async function newUser(): Promise<string> {
  const { user } = await accounts.createUser({
    email: `byo-${randomBytes(4).toString("hex")}@example.com`,
    plan: "basic",
  });
  return user.id;
}

const boxK1 = () => createSecretBox({ keys: [k1], currentKeyId: "k1" });

describe("providerKeyHint", () => {
  it("shows a vendor prefix and the last four characters of long keys only", () => {
    expect(providerKeyHint("sk-proj-0123456789abcdefWXYZ")).toBe("sk-…WXYZ");
    expect(providerKeyHint("AIzaSyA0123456789abcdef")).toBe("…cdef");
    expect(providerKeyHint("short-key")).toBe("…");
  });
});

describe("UserProviderKeyRepository", () => {
  it("stores a key sealed, lists it without the secret and opens it for a job", async () => {
    const userId = await newUser();
    const keys = repository(boxK1());
    const apiKey = `sk-${randomBytes(16).toString("hex")}`;
    const stored = await keys.put({ userId, provider: "openai", apiKey });
    expect(stored).toEqual({
      id: expect.any(String),
      provider: "openai",
      hint: `sk-…${apiKey.slice(-4)}`,
      createdAt: expect.any(Date),
      lastUsedAt: null,
    });
    expect(await keys.list(userId)).toEqual([stored]);

    const rows = await db.$queryRawUnsafe<Array<Record<string, unknown>>>(
      "SELECT * FROM user_provider_keys WHERE user_id = $1::uuid",
      userId,
    );
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(apiKey.slice(3));
    expect(rows[0]?.key_id).toBe("k1");

    expect(await keys.openForJob(userId, "openai")).toBe(apiKey);
    expect((await keys.list(userId))[0]?.lastUsedAt).toBeInstanceOf(Date);
    expect(await keys.openForJob(userId, "anthropic")).toBeUndefined();
  });

  it("keeps one key per user and provider: a second put replaces the first", async () => {
    const userId = await newUser();
    const keys = repository(boxK1());
    const first = await keys.put({ userId, provider: "openai", apiKey: "sk-first-0000000000001111" });
    const second = await keys.put({ userId, provider: "openai", apiKey: "sk-second-000000000002222" });
    expect(second.id).toBe(first.id);
    expect(second.hint).toBe("sk-…2222");
    expect(await keys.list(userId)).toHaveLength(1);
    expect(await keys.openForJob(userId, "openai")).toBe("sk-second-000000000002222");
  });

  it("deletes a key and reports whether there was one", async () => {
    const userId = await newUser();
    const keys = repository(boxK1());
    await keys.put({ userId, provider: "openai", apiKey: "sk-delete-me-000000000000" });
    expect(await keys.delete(userId, "openai")).toBe(true);
    expect(await keys.delete(userId, "openai")).toBe(false);
    expect(await keys.list(userId)).toEqual([]);
  });

  it("does not open a ciphertext copied to another user", async () => {
    const owner = await newUser();
    const other = await newUser();
    const keys = repository(boxK1());
    await keys.put({ userId: owner, provider: "openai", apiKey: "sk-owner-0000000000000000" });
    await keys.put({ userId: other, provider: "openai", apiKey: "sk-other-0000000000000000" });
    await db.$executeRawUnsafe(
      `UPDATE user_provider_keys SET ciphertext = (SELECT ciphertext FROM user_provider_keys WHERE user_id = $1::uuid)
       WHERE user_id = $2::uuid`,
      owner,
      other,
    );
    await expect(keys.openForJob(other, "openai")).rejects.toThrow(/does not authenticate/);
  });

  it("opens keys sealed before a rotation, seals new ones with the new key and re-seals stale ones", async () => {
    const userId = await newUser();
    await repository(boxK1()).put({ userId, provider: "openai", apiKey: "sk-old-000000000000000001" });
    const rotated = repository(createSecretBox({ keys: [k2, k1], currentKeyId: "k2" }));
    expect(await rotated.openForJob(userId, "openai")).toBe("sk-old-000000000000000001");
    await rotated.put({ userId, provider: "anthropic", apiKey: "sk-new-000000000000000002" });
    const keyIds = async () =>
      (
        await db.$queryRawUnsafe<Array<{ provider: string; key_id: string }>>(
          "SELECT provider, key_id FROM user_provider_keys WHERE user_id = $1::uuid ORDER BY provider",
          userId,
        )
      ).map((row) => `${row.provider}:${row.key_id}`);
    expect(await keyIds()).toEqual(["anthropic:k2", "openai:k1"]);

    const result = await rotated.resealStale({ batchSize: 1 });
    expect(result.resealed).toBeGreaterThanOrEqual(1);
    expect(await keyIds()).toEqual(["anthropic:k2", "openai:k2"]);
    const k2Only = repository(createSecretBox({ keys: [k2], currentKeyId: "k2" }));
    expect(await k2Only.openForJob(userId, "openai")).toBe("sk-old-000000000000000001");
  });

  it("deletes a user's keys with the user", async () => {
    const userId = await newUser();
    await repository(boxK1()).put({ userId, provider: "openai", apiKey: "sk-cascade-0000000000000" });
    await db.user.delete({ where: { id: userId } });
    const [row] = await db.$queryRawUnsafe<Array<{ count: number }>>(
      "SELECT count(*)::int AS count FROM user_provider_keys WHERE user_id = $1::uuid",
      userId,
    );
    expect(row?.count).toBe(0);
  });
});
