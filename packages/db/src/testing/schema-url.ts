/** Schema names this helper accepts: plain lower-case identifiers, safe unquoted everywhere. */
const PLAIN_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Returns `baseUrl` pointed at `schema`, for every client genq uses:
 *
 * - `schema=<schema>` is Prisma's convention; genq's `createPrismaClient` reads it
 *   and hands it to the adapter, which qualifies model queries with it. The adapter
 *   does *not* follow the search_path for model queries (it qualifies them with
 *   `public` unless told otherwise), so the search_path alone is not enough.
 * - `options=-c search_path=<schema>` is the libpq startup option, honoured by `pg`,
 *   by raw queries through the Prisma adapter and by `psql`. It is percent-encoded
 *   with `%20`, not `+`: libpq does not decode `+` as a space.
 *
 * Options already in the URL are kept; a previous `schema` is replaced.
 */
export function withSchemaUrl(baseUrl: string, schema: string): string {
  if (!PLAIN_IDENTIFIER.test(schema)) {
    throw new Error(`schema name ${JSON.stringify(schema)} must match ${PLAIN_IDENTIFIER}`);
  }
  const url = new URL(baseUrl);
  const params = new URLSearchParams(url.search);
  const existingOptions = params.get("options");
  params.delete("schema");
  params.delete("options");
  // A later -c wins over an earlier one, so appending overrides any search_path set before.
  const searchPath = `-c search_path=${schema}`;
  const entries: [string, string][] = [
    ...params.entries(),
    ["schema", schema],
    ["options", existingOptions ? `${existingOptions} ${searchPath}` : searchPath],
  ];
  // URLSearchParams#toString encodes spaces as `+`, which libpq reads literally.
  url.search = entries
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
  return url.toString();
}
