import { GenqError, isId } from "@genq/core";
import { z } from "zod";

/** The opaque cursor of a list page: the last row's id, base64url-encoded. */
export function encodeCursor(id: string | null): string | null {
  return id === null ? null : Buffer.from(id).toString("base64url");
}

/** The row id inside a cursor from {@link encodeCursor}; anything else is the caller's mistake (400). */
export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (!isId(id)) {
    throw new GenqError("invalid_request", "querystring.cursor: not a cursor returned by this API", {
      details: { location: "querystring", field: "cursor" },
    });
  }
  return id;
}

/** The schema of a cursor-paginated list of `item`s: `{object: "list", data, nextCursor}`. */
export function listPage<Item extends z.ZodType>(item: Item) {
  return z.object({ object: z.literal("list"), data: z.array(item), nextCursor: z.string().nullable() });
}
