import { isId, NotFoundError } from "@genq/core";
import type { Database } from "./client.ts";

/** An uploaded image: its object key and what was read from its bytes. */
export interface UploadRecord {
  id: string;
  userId: string;
  key: string;
  contentType: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
  createdAt: Date;
}

/** What {@link UploadRepository.create} records, after the object was stored. */
export type UploadInput = Omit<UploadRecord, "key" | "createdAt">;

/**
 * The object key of an upload, derived from its owner and id: the API writes it
 * there and the worker reads it back without a lookup.
 */
export function uploadObjectKey(userId: string, uploadId: string): string {
  return `uploads/${userId}/${uploadId}`;
}

/** Upload rows: one per image a user uploaded for edits and variations. */
export class UploadRepository {
  readonly #db: Database;

  constructor(options: { db: Database }) {
    this.#db = options.db;
  }

  /** Records an upload whose bytes are already stored under {@link uploadObjectKey}. */
  async create(input: UploadInput): Promise<UploadRecord> {
    return this.#db.upload.create({ data: { ...input, key: uploadObjectKey(input.userId, input.id) } });
  }

  /** The user's upload, or `null` when there is none with this id or it is another user's. */
  async findOwned(userId: string, uploadId: string): Promise<UploadRecord | null> {
    // A malformed id names no upload; answering here keeps it out of Postgres' uuid parser.
    if (!isId(uploadId)) return null;
    return this.#db.upload.findFirst({ where: { id: uploadId, userId } });
  }

  /** The user's upload; throws {@link NotFoundError} for a missing or another user's upload. */
  async findForUser(userId: string, uploadId: string): Promise<UploadRecord> {
    const upload = await this.findOwned(userId, uploadId);
    if (upload === null) throw new NotFoundError("upload", uploadId);
    return upload;
  }
}
