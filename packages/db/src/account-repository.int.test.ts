import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountRepository } from "./account-repository.ts";
import { createPrismaClient, type Database } from "./client.ts";
import { createTestDatabase, type TestDatabase } from "./testing/index.ts";

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

/** A per-test email domain, so filters only see this test's users. */
function domain(): string {
  return `${randomBytes(4).toString("hex")}.example.com`;
}

describe("AccountRepository.listUsers", () => {
  it("pages through users newest first", async () => {
    const at = domain();
    const created = [];
    for (let index = 0; index < 5; index += 1) {
      created.push((await accounts.createUser({ email: `user${index}@${at}`, plan: "basic" })).user.id);
    }
    const first = await accounts.listUsers({ email: at, limit: 2 });
    expect(first.users.map((user) => user.id)).toEqual([created[4], created[3]]);
    expect(first.nextCursor).toBe(created[3]);
    const second = await accounts.listUsers({ email: at, limit: 2, cursor: first.nextCursor ?? undefined });
    expect(second.users.map((user) => user.id)).toEqual([created[2], created[1]]);
    const last = await accounts.listUsers({ email: at, limit: 2, cursor: second.nextCursor ?? undefined });
    expect(last.users.map((user) => user.id)).toEqual([created[0]]);
    expect(last.nextCursor).toBeNull();
  });

  it("filters by email text case-insensitively, by plan and by disabled", async () => {
    const at = domain();
    const basic = (await accounts.createUser({ email: `ann@${at}`, plan: "basic" })).user;
    const pro = (await accounts.createUser({ email: `bob@${at}`, plan: "professional" })).user;
    await accounts.updateUser(pro.id, { disabled: true });

    const ids = async (query: Parameters<AccountRepository["listUsers"]>[0]) =>
      (await accounts.listUsers(query)).users.map((user) => user.id);
    expect(await ids({ email: `ANN@${at.toUpperCase()}`, limit: 10 })).toEqual([basic.id]);
    expect(await ids({ email: at, plan: "professional", limit: 10 })).toEqual([pro.id]);
    expect(await ids({ email: at, disabled: true, limit: 10 })).toEqual([pro.id]);
    expect(await ids({ email: at, disabled: false, limit: 10 })).toEqual([basic.id]);
  });

  it("takes LIKE wildcards in the email filter literally", async () => {
    const at = domain();
    const underscore = (await accounts.createUser({ email: `a_b@${at}`, plan: "basic" })).user;
    await accounts.createUser({ email: `axb@${at}`, plan: "basic" });
    const page = await accounts.listUsers({ email: `a_b@${at}`, limit: 10 });
    expect(page.users.map((user) => user.id)).toEqual([underscore.id]);
    expect((await accounts.listUsers({ email: `%@${at}`, limit: 10 })).users).toEqual([]);
  });
});

describe("AccountRepository.updateUser", () => {
  it("changes the plan and leaves the rest", async () => {
    const { user } = await accounts.createUser({ email: `plan@${domain()}`, plan: "basic" });
    const updated = await accounts.updateUser(user.id, { plan: "enterprise" });
    expect(updated).toEqual({ ...user, plan: "enterprise" });
  });

  it("disables a user, whose keys stop authenticating, and enables it again", async () => {
    const { user, apiKey } = await accounts.createUser({ email: `off@${domain()}`, plan: "basic" });
    expect(await accounts.authenticate(apiKey)).not.toBeNull();

    const disabled = await accounts.updateUser(user.id, { disabled: true });
    expect(disabled?.disabledAt).toBeInstanceOf(Date);
    expect(await accounts.authenticate(apiKey)).toBeNull();
    // Disabling again keeps the original time.
    expect((await accounts.updateUser(user.id, { disabled: true }))?.disabledAt).toEqual(
      disabled?.disabledAt,
    );

    const enabled = await accounts.updateUser(user.id, { disabled: false });
    expect(enabled?.disabledAt).toBeNull();
    expect(await accounts.authenticate(apiKey)).toMatchObject({ userId: user.id });
  });

  it("returns null for a user that does not exist", async () => {
    expect(await accounts.updateUser("0190a0b0-0000-7000-8000-000000000000", { plan: "basic" })).toBeNull();
  });
});

describe("AccountRepository.findApiKeysByPrefix", () => {
  it("finds keys whose prefix starts with the given text, with their user", async () => {
    const { user, key } = await accounts.createUser({ email: `keys@${domain()}`, plan: "basic" });
    const second = await accounts.createApiKey({ userId: user.id, name: "ci" });

    expect(await accounts.findApiKeysByPrefix(key.prefix)).toEqual([key]);
    const found = await accounts.findApiKeysByPrefix(key.prefix.slice(0, 7));
    expect(found.map((candidate) => candidate.id)).toContain(key.id);
    expect(found.every((candidate) => candidate.prefix.startsWith(key.prefix.slice(0, 7)))).toBe(true);
    expect((await accounts.findApiKeysByPrefix(second.key.prefix))[0]).toMatchObject({
      id: second.key.id,
      userId: user.id,
      name: "ci",
    });
  });

  it("takes an underscore literally and refuses prefixes shorter than four characters", async () => {
    await accounts.createUser({ email: `wild@${domain()}`, plan: "basic" });
    // Every key starts with `gq_`; `gq__` would match all of them if `_` were a wildcard.
    expect(await accounts.findApiKeysByPrefix("gq__")).toEqual([]);
    await expect(accounts.findApiKeysByPrefix("gq_")).rejects.toMatchObject({ code: "invalid_request" });
  });
});
