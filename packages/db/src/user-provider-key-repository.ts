import { newId, type SecretBox } from "@genq/core";
import type { Database } from "./client.ts";

/** A stored BYO provider key as it may be shown: never the secret, only its hint. */
export interface UserProviderKeySummary {
  id: string;
  provider: string;
  /** e.g. `sk-…abcd`: a recognizable prefix and the last four characters, never more. */
  hint: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** Options for {@link UserProviderKeyRepository}. */
export interface UserProviderKeyRepositoryOptions {
  db: Database;
  /** Seals keys on `put`, opens them in `openForJob`. */
  secretBox: SecretBox;
  /** For `last_used_at`. Default `() => new Date()`. */
  now?: () => Date;
}

const SUMMARY = { id: true, provider: true, hint: true, createdAt: true, lastUsedAt: true } as const;

/**
 * The non-secret hint of an API key: a vendor prefix such as `sk-` and the last four
 * characters (only for keys long enough that four characters reveal little).
 */
export function providerKeyHint(apiKey: string): string {
  const prefix = /^[A-Za-z]{2,4}-/.exec(apiKey)?.[0] ?? "";
  const suffix = apiKey.length >= 16 ? apiKey.slice(-4) : "";
  return `${prefix}…${suffix}`;
}

/**
 * Users' own provider keys (BYO keys), one per user and provider, sealed at rest
 * with AES-256-GCM. Each ciphertext is bound to its user and provider, so a row
 * copied to another user does not open. Nothing here returns the secret except
 * {@link UserProviderKeyRepository.openForJob}, which the worker calls.
 */
export class UserProviderKeyRepository {
  readonly #db: Database;
  readonly #box: SecretBox;
  readonly #now: () => Date;

  constructor(options: UserProviderKeyRepositoryOptions) {
    this.#db = options.db;
    this.#box = options.secretBox;
    this.#now = options.now ?? (() => new Date());
  }

  /** Stores (or replaces) the user's key for `provider`, sealed with the current encryption key. */
  async put(input: { userId: string; provider: string; apiKey: string }): Promise<UserProviderKeySummary> {
    const sealed = this.#box.seal(input.apiKey, context(input.userId, input.provider));
    const fields = {
      keyId: sealed.keyId,
      ciphertext: sealed.ciphertext,
      hint: providerKeyHint(input.apiKey),
      createdAt: this.#now(),
      lastUsedAt: null,
    };
    return this.#db.userProviderKey.upsert({
      where: { userId_provider: { userId: input.userId, provider: input.provider } },
      create: { id: newId(), userId: input.userId, provider: input.provider, ...fields },
      update: fields,
      select: SUMMARY,
    });
  }

  /** The user's stored keys, by provider name. */
  async list(userId: string): Promise<UserProviderKeySummary[]> {
    return this.#db.userProviderKey.findMany({
      where: { userId },
      orderBy: { provider: "asc" },
      select: SUMMARY,
    });
  }

  /** Deletes the user's key for `provider`; false when there was none. */
  async delete(userId: string, provider: string): Promise<boolean> {
    const { count } = await this.#db.userProviderKey.deleteMany({ where: { userId, provider } });
    return count > 0;
  }

  /**
   * The user's plaintext key for `provider`, for the call about to be made, or
   * undefined when the user stored none; records the use in `last_used_at`.
   * Throws (code `internal_error`) when the row cannot be opened, e.g. its
   * encryption key was removed from the ring.
   */
  async openForJob(userId: string, provider: string): Promise<string | undefined> {
    const row = await this.#db.userProviderKey.findUnique({
      where: { userId_provider: { userId, provider } },
      select: { id: true, keyId: true, ciphertext: true },
    });
    if (row === null) return undefined;
    const apiKey = this.#box.open(
      { keyId: row.keyId, ciphertext: row.ciphertext },
      context(userId, provider),
    );
    await this.#db.userProviderKey.updateMany({ where: { id: row.id }, data: { lastUsedAt: this.#now() } });
    return apiKey;
  }

  /**
   * Re-seals every key sealed with an encryption key other than the current one,
   * so an old key can leave the ring once `resealed` covers them all. Rows that
   * cannot be opened are skipped and reported by id (never with their content).
   */
  async resealStale(
    options: { batchSize?: number } = {},
  ): Promise<{ resealed: number; unreadable: string[] }> {
    const batchSize = options.batchSize ?? 100;
    const unreadable: string[] = [];
    let resealed = 0;
    let cursor: string | undefined;
    for (;;) {
      const rows = await this.#db.userProviderKey.findMany({
        where: {
          keyId: { not: this.#box.currentKeyId },
          ...(cursor === undefined ? {} : { id: { gt: cursor } }),
        },
        select: { id: true, userId: true, provider: true, keyId: true, ciphertext: true },
        orderBy: { id: "asc" },
        take: batchSize,
      });
      for (const row of rows) {
        const bound = context(row.userId, row.provider);
        let plaintext: string;
        try {
          plaintext = this.#box.open({ keyId: row.keyId, ciphertext: row.ciphertext }, bound);
        } catch {
          unreadable.push(row.id);
          continue;
        }
        const sealed = this.#box.seal(plaintext, bound);
        // Conditional on the old ciphertext: a concurrent put wins.
        const { count } = await this.#db.userProviderKey.updateMany({
          where: { id: row.id, ciphertext: row.ciphertext },
          data: { keyId: sealed.keyId, ciphertext: sealed.ciphertext },
        });
        resealed += count;
      }
      if (rows.length < batchSize) return { resealed, unreadable };
      cursor = rows[rows.length - 1]?.id;
    }
  }
}

function context(userId: string, provider: string): string {
  return `user_provider_keys:${userId}:${provider}`;
}
