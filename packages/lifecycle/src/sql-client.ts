import type pg from "pg";

/** A hot-path statement: its SQL, and the name it is prepared under on each connection. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/** Declares a statement; names are unique per process (they key pg's per-connection cache). */
export function statement(name: string, text: string): Statement {
  return { name: `genq_${name}`, text };
}

/** Options for {@link SqlClient}. */
export interface SqlClientOptions {
  /**
   * Prepare statements by name (`pg` parses and plans each once per connection).
   * Turn off behind a pooler that does not track prepared statements (PgBouncer
   * before 1.21, or without `max_prepared_statements`): the same SQL then travels
   * unnamed, planned on every call. @defaultValue true
   */
  prepared?: boolean;
}

/**
 * The lifecycle's way around the ORM: typed rows from `pg` on the pool Prisma's
 * adapter uses, each statement one round trip.
 */
export class SqlClient {
  readonly #pool: pg.Pool;
  readonly #prepared: boolean;

  constructor(pool: pg.Pool, options: SqlClientOptions = {}) {
    this.#pool = pool;
    this.#prepared = options.prepared ?? true;
  }

  /** Runs one statement with its parameters; one round trip. */
  async rows<Row>(query: Statement, values: readonly unknown[]): Promise<Row[]> {
    const result = await this.#pool.query<Row & pg.QueryResultRow>(
      this.#prepared
        ? { name: query.name, text: query.text, values: values as unknown[] }
        : { text: query.text, values: values as unknown[] },
    );
    return result.rows;
  }

  /**
   * Runs several statements as one transaction in one round trip (the simple query
   * protocol runs a multi-statement string as one implicit transaction, each
   * statement with its own snapshot). No parameters: the caller inlines only values
   * it has validated ({@link uuidLiteral}, {@link intLiteral}). Returns the last
   * statement's rows.
   */
  async script<Row>(text: string): Promise<Row[]> {
    const results = (await this.#pool.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    const last = Array.isArray(results) ? results.at(-1) : results;
    return (last?.rows ?? []) as Row[];
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID as a SQL literal; throws on anything else, so nothing else reaches a script. */
export function uuidLiteral(value: string): string {
  if (!UUID.test(value)) throw new TypeError(`not a uuid: ${JSON.stringify(value)}`);
  return `'${value}'::uuid`;
}

/** A safe integer as a SQL literal. */
export function intLiteral(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not a safe integer: ${value}`);
  return String(value);
}
