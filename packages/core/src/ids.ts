import { v7 } from "uuid";

/**
 * A new id for a job, user, key or record: a UUIDv7, so ids sort by creation
 * time and serve directly as pagination cursors and BullMQ job ids.
 */
export function newId(): string {
  return v7();
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` has the shape of a UUID (any version). */
export function isId(value: string): boolean {
  return UUID_PATTERN.test(value);
}
