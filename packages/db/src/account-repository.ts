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
