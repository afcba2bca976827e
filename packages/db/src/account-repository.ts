import { GenqError, newId } from "@genq/core";
import { generateApiKey, hashApiKey } from "./api-key.ts";
import type { Database } from "./client.ts";
import type { Plan } from "./generated/prisma/enums.ts";
import { isUniqueViolation } from "./prisma-errors.ts";

/** A user (tenant) as the rest of genq sees it. */
export interface Account {
  id: string;
  email: string;
  plan: Plan;
  disabledAt: Date | null;
  createdAt: Date;
}

/** An API key without its secret. */
export interface ApiKeyInfo {
  id: string;
  userId: string;
  name: string | null;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** The authenticated caller of a request. */
export interface Principal {
  userId: string;
  plan: Plan;
  apiKeyId: string;
}

/** Plans a user can be on. */
export const PLANS: readonly Plan[] = ["basic", "professional", "enterprise"];

/** Filters and position for {@link AccountRepository.listUsers}. */
export interface UserListQuery {
  /** The id of the last user of the previous page. */
  cursor?: string | undefined;
  limit: number;
  /** Users whose email contains this text (case-insensitive, taken literally). */
  email?: string | undefined;
  plan?: Plan | undefined;
  /** `true`: only disabled users; `false`: only enabled ones; absent: both. */
  disabled?: boolean | undefined;
}

/** A page of users, newest first. */
export interface UserPage {
  users: Account[];
  /** The cursor of the next page, or null on the last page. */
  nextCursor: string | null;
}

/** What {@link AccountRepository.updateUser} changes; absent fields stay as they are. */
export interface UserUpdate {
  plan?: Plan | undefined;
  /** `true` disables the user (its keys stop authenticating); `false` enables it again. */
  disabled?: boolean | undefined;
}

/** The shortest prefix {@link AccountRepository.findApiKeysByPrefix} searches by. */
export const MIN_API_KEY_SEARCH_PREFIX = 4;

/**
 * The user columns genq reads. Selecting them explicitly keeps these queries
 * independent of columns other features add to `users`.
 */
const ACCOUNT_COLUMNS = { id: true, email: true, plan: true, disabledAt: true, createdAt: true } as const;

/** Escapes LIKE wildcards: Prisma's `contains`/`startsWith` pass them through to Postgres. */
function literalPattern(text: string): string {
  return text.replaceAll(/[\\%_]/g, "\\$&");
}

/** Users and their API keys. */
export class AccountRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Creates a user and its first API key; the key's secret is returned once. */
  async createUser(input: {
    email: string;
    plan: Plan;
  }): Promise<{ user: Account; apiKey: string; key: ApiKeyInfo }> {
    const email = input.email.trim().toLowerCase();
    try {
      return await this.#db.$transaction(async (transaction) => {
        const user = await transaction.user.create({ data: { id: newId(), email, plan: input.plan } });
        const generated = generateApiKey();
        const key = await transaction.apiKey.create({
          data: {
            id: newId(),
            userId: user.id,
            name: "default",
            prefix: generated.prefix,
            secretHash: generated.secretHash,
          },
        });
        return { user: toAccount(user), apiKey: generated.secret, key: toKeyInfo(key) };
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new GenqError("conflict", `a user with email ${email} already exists`, { details: { email } });
      }
      throw error;
    }
  }

  /** Finds a user by id or email. */
  async findUser(idOrEmail: string): Promise<Account | null> {
    const user = idOrEmail.includes("@")
      ? await this.#db.user.findUnique({ where: { email: idOrEmail.trim().toLowerCase() } })
      : await this.#db.user.findUnique({ where: { id: idOrEmail } });
    return user === null ? null : toAccount(user);
  }

  /**
   * Users, newest first (ids are UUIDv7, so id order is creation order), filtered
   * by email text, plan and whether they are disabled.
   */
  async listUsers(query: UserListQuery): Promise<UserPage> {
    const users = await this.#db.user.findMany({
      where: {
        ...(query.email === undefined
          ? {}
          : { email: { contains: literalPattern(query.email.trim().toLowerCase()) } }),
        ...(query.plan === undefined ? {} : { plan: query.plan }),
        ...(query.disabled === undefined ? {} : { disabledAt: query.disabled ? { not: null } : null }),
        ...(query.cursor === undefined ? {} : { id: { lt: query.cursor } }),
      },
      select: ACCOUNT_COLUMNS,
      orderBy: { id: "desc" },
      take: query.limit + 1,
    });
    const hasMore = users.length > query.limit;
    const page = hasMore ? users.slice(0, query.limit) : users;
    return { users: page.map(toAccount), nextCursor: hasMore ? (page.at(-1)?.id ?? null) : null };
  }

  /**
   * Changes a user's plan or disables/enables it; returns the user, or null when
   * there is none. Disabling an already disabled user keeps its original
   * `disabledAt`, so repeating the request changes nothing.
   */
  async updateUser(id: string, update: UserUpdate): Promise<Account | null> {
    return this.#db.$transaction(async (transaction) => {
      const existing = await transaction.user.findUnique({ where: { id }, select: ACCOUNT_COLUMNS });
      if (existing === null) return null;
      const disabledAt =
        update.disabled === undefined
          ? undefined
          : update.disabled
            ? (existing.disabledAt ?? new Date())
            : null;
      const user = await transaction.user.update({
        where: { id },
        data: {
          ...(update.plan === undefined ? {} : { plan: update.plan }),
          ...(disabledAt === undefined ? {} : { disabledAt }),
        },
        select: ACCOUNT_COLUMNS,
      });
      return toAccount(user);
    });
  }

  /**
   * Keys whose visible prefix starts with `prefix` (at least
   * {@link MIN_API_KEY_SEARCH_PREFIX} characters), ordered by prefix, at most `limit`.
   */
  async findApiKeysByPrefix(prefix: string, limit = 100): Promise<ApiKeyInfo[]> {
    if (prefix.length < MIN_API_KEY_SEARCH_PREFIX) {
      throw new GenqError(
        "invalid_request",
        `an API key prefix to search by needs at least ${MIN_API_KEY_SEARCH_PREFIX} characters`,
        { details: { prefix } },
      );
    }
    const keys = await this.#db.apiKey.findMany({
      where: { prefix: { startsWith: literalPattern(prefix) } },
      orderBy: { prefix: "asc" },
      take: limit,
    });
    return keys.map(toKeyInfo);
  }

  /** Creates another API key for a user; the secret is returned once. */
  async createApiKey(input: { userId: string; name?: string }): Promise<{ apiKey: string; key: ApiKeyInfo }> {
    const generated = generateApiKey();
    const key = await this.#db.apiKey.create({
      data: {
        id: newId(),
        userId: input.userId,
        name: input.name ?? null,
        prefix: generated.prefix,
        secretHash: generated.secretHash,
      },
    });
    return { apiKey: generated.secret, key: toKeyInfo(key) };
  }

  /** Revokes a key by id or visible prefix; returns the key, or null when there is none. */
  async revokeApiKey(idOrPrefix: string): Promise<ApiKeyInfo | null> {
    const where = idOrPrefix.startsWith("gq_") ? { prefix: idOrPrefix } : { id: idOrPrefix };
    const existing = await this.#db.apiKey.findUnique({ where });
    if (existing === null) return null;
    const key = await this.#db.apiKey.update({
      where: { id: existing.id },
      data: { revokedAt: existing.revokedAt ?? new Date() },
    });
    return toKeyInfo(key);
  }

  /** Lists a user's keys, newest first. */
  async listApiKeys(userId: string): Promise<ApiKeyInfo[]> {
    const keys = await this.#db.apiKey.findMany({ where: { userId }, orderBy: { id: "desc" } });
    return keys.map(toKeyInfo);
  }

  /**
   * Resolves a presented key to its caller, or null when the key is unknown,
   * revoked, or its user is disabled.
   */
  async authenticate(secret: string): Promise<Principal | null> {
    const key = await this.#db.apiKey.findUnique({
      where: { secretHash: hashApiKey(secret) },
      include: { user: { select: { plan: true, disabledAt: true } } },
    });
    if (key === null || key.revokedAt !== null || key.user.disabledAt !== null) return null;
    // Recording use at most once a minute keeps authentication read-only on hot paths.
    if (key.lastUsedAt === null || Date.now() - key.lastUsedAt.getTime() > 60_000) {
      await this.#db.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: new Date() } });
    }
    return { userId: key.userId, plan: key.user.plan, apiKeyId: key.id };
  }
}

function toAccount(user: {
  id: string;
  email: string;
  plan: Plan;
  disabledAt: Date | null;
  createdAt: Date;
}): Account {
  return {
    id: user.id,
    email: user.email,
    plan: user.plan,
    disabledAt: user.disabledAt,
    createdAt: user.createdAt,
  };
}

function toKeyInfo(key: ApiKeyInfo & { secretHash?: string }): ApiKeyInfo {
  return {
    id: key.id,
    userId: key.userId,
    name: key.name,
    prefix: key.prefix,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    revokedAt: key.revokedAt,
  };
}
