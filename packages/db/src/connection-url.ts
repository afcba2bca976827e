/**
 * Splits Prisma's `?schema=` convention off a PostgreSQL URL. `pg` does not know
 * the parameter, so it is removed from the URL and returned separately; callers
 * pass it to the driver as a search_path and to Prisma as the query schema.
 */
export function parseDatabaseUrl(connectionString: string): { url: string; schema: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(connectionString);
  } catch {
    throw new Error(
      "DATABASE_URL is not a valid URL; expected postgresql://user:password@host:5432/database",
    );
  }
  const schema = parsed.searchParams.get("schema") ?? undefined;
  parsed.searchParams.delete("schema");
  return { url: parsed.toString(), schema };
}
