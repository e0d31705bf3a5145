// The few places where SQLite and PostgreSQL really differ, as named
// capabilities. Queries and migrations ask for a capability; nothing else
// checks which dialect it runs on.
import { PostgresIntrospector, SqliteIntrospector, sql, type AliasedRawBuilder, type Expression, type Kysely, type QueryExecutorProvider, type RawBuilder } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

/** A calendar unit an instant can be rounded down to, in UTC. */
export type TruncationUnit = 'hour' | 'day';

/** What an element of a {@link DialectCapabilities.jsonArrayRows} row is read as; an instant is its toISOString() text. */
export type JsonFieldType = 'text' | 'timestamp' | 'bigint';

/** A JSON parameter's rows, aliased `r`, and each row's elements in order. */
export interface JsonArrayRows {
  rows: AliasedRawBuilder<unknown, 'r'>;
  columns: RawBuilder<unknown>[];
}

export interface DialectCapabilities {
  readonly name: DialectName;
  /** Column type for instants: `timestamptz` on PostgreSQL, ISO-8601 `text` on SQLite (sorts and compares as text). */
  readonly timestampType: 'timestamptz' | 'text';
  /** Column type for 64-bit counters. */
  readonly bigIntegerType: 'bigint' | 'integer';
  /** An instant as the driver returns it (a Date from pg, an ISO string from SQLite) as a Date. */
  readTimestamp(value: Date | string): Date;
  /**
   * The schema Kysely's Migrator should keep its bookkeeping tables in. On
   * PostgreSQL it must be named: without it the Migrator looks for its table
   * in every schema of the database and can find another schema's.
   */
  migrationTableSchema(db: QueryExecutorProvider): Promise<string | undefined>;
  /** True when the error is a unique or primary key violation. */
  isUniqueViolation(error: unknown): boolean;
  /**
   * A stored instant rounded down to the start of its UTC hour or day, as an
   * instant again (readTimestamp reads it). The unit is spelled into the SQL,
   * not bound, so the same expression can be selected and grouped by.
   *
   * @example
   * db.selectFrom('usageCounts').select(capabilities.truncateTimestamp(sql.ref('bucketStart'), 'hour').as('start'))
   */
  truncateTimestamp(instant: Expression<unknown>, unit: TruncationUnit): RawBuilder<Date | string>;
  /**
   * True when the error says the database cannot be used right now (unreachable,
   * restarting, out of connections, disk full, locked, read-only), rather than
   * that the query itself is wrong: such a request answers 503 with Retry-After,
   * not 500, and succeeds again once the database is back.
   */
  isUnavailable(error: unknown): boolean;
  /**
   * Runs start-up work (migrations, the first owner) while no other Keyward
   * process on the same database does, so replicas started together do not
   * race. On PostgreSQL a transaction-scoped advisory lock, one per schema;
   * SQLite's write transactions already run one at a time.
   */
  withStartupLock<DB, T>(db: Kysely<DB>, work: () => Promise<T>): Promise<T>;
  /**
   * The rows of one JSON parameter holding an array of arrays, for batch
   * writes whose SQL must not grow with the batch: the same text for every
   * batch (one prepared statement) and no query nodes per value. `columns[i]`
   * reads element i of each row as `types[i]` (SQLite keeps JSON's own types
   * and instants as their ISO text, as it stores them).
   *
   * @example
   * const { rows, columns: [id, at] } = capabilities.jsonArrayRows(JSON.stringify([[id, at.toISOString()]]), ['text', 'timestamp']);
   * db.selectFrom(rows).select([id!.as('id'), at!.as('at')])
   */
  jsonArrayRows(json: string, types: readonly JsonFieldType[]): JsonArrayRows;
}

// Network failures reaching any database server, as Node and pg report them.
const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// pg's own errors for a pool or connection that failed carry no code, only these messages.
const PG_CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end)/;
// SQLite primary result codes (the low byte of an extended code) that describe the
// file or its locks, not the statement: BUSY 5, LOCKED 6, NOMEM 7, READONLY 8,
// IOERR 10, FULL 13, CANTOPEN 14, PROTOCOL 15.
const SQLITE_UNAVAILABLE_CODES = new Set([5, 6, 7, 8, 10, 13, 14, 15]);

/** The error and its causes, outermost first (drivers and Kysely wrap errors). */
function* causes(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  for (let current = error; typeof current === 'object' && current !== null && !seen.has(current); current = (current as { cause?: unknown }).cause) {
    seen.add(current);
    yield current as Record<string, unknown>;
    if (current instanceof AggregateError) for (const inner of current.errors) yield* causes(inner);
  }
}

function isNetworkFailure(error: Record<string, unknown>): boolean {
  return typeof error.code === 'string' && NETWORK_ERROR_CODES.has(error.code);
}

// Closed sets spelled as SQL text: never built from input.
const SQLITE_TRUNCATION_FORMAT: Record<TruncationUnit, string> = { hour: "'%Y-%m-%dT%H:00:00.000Z'", day: "'%Y-%m-%dT00:00:00.000Z'" };
const POSTGRES_TRUNCATION_FIELD: Record<TruncationUnit, string> = { hour: "'hour'", day: "'day'" };

function invalidTimestamp(value: unknown): never {
  throw new TypeError(`Not a stored timestamp: ${String(value)}`);
}

// Closed set spelled as SQL text: never built from input.
const POSTGRES_JSON_CAST: Record<JsonFieldType, string> = { text: '', timestamp: '::timestamptz', bigint: '::bigint' };

const sqliteCapabilities: DialectCapabilities = {
  name: 'sqlite',
  timestampType: 'text',
  bigIntegerType: 'integer',
  readTimestamp(value) {
    if (value instanceof Date) return value;
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? invalidTimestamp(value) : date;
  },
  async migrationTableSchema() {
    return undefined;
  },
  withStartupLock(_db, work) {
    return work();
  },
  isUniqueViolation(error) {
    // SQLITE_CONSTRAINT_PRIMARYKEY (1555) and SQLITE_CONSTRAINT_UNIQUE (2067).
    const code = (error as { errcode?: unknown } | null)?.errcode;
    return code === 1555 || code === 2067;
  },
  truncateTimestamp(instant, unit) {
    // Instants are stored as toISOString() text, which strftime reads; its
    // answer has the same shape, so it compares and reads back like a column.
    return sql<string>`strftime(${sql.raw(SQLITE_TRUNCATION_FORMAT[unit])}, ${instant})`;
  },
  isUnavailable(error) {
    for (const each of causes(error)) {
      if (typeof each.errcode === 'number' && SQLITE_UNAVAILABLE_CODES.has(each.errcode & 0xff)) return true;
      // A file that cannot be opened or written at the OS level (EACCES, ENOSPC, EROFS...).
      if (typeof each.code === 'string' && /^(ENOSPC|EROFS|EACCES|EPERM|EIO|EMFILE|ENFILE)$/.test(each.code)) return true;
    }
    return false;
  },
  jsonArrayRows(json, types) {
    return { rows: sql`json_each(${json})`.as('r'), columns: types.map((_, index) => sql`r.value ->> ${sql.lit(index)}`) };
  },
};

const postgresCapabilities: DialectCapabilities = {
  name: 'postgres',
  timestampType: 'timestamptz',
  bigIntegerType: 'bigint',
  readTimestamp(value) {
    return value instanceof Date ? value : invalidTimestamp(value);
  },
  async migrationTableSchema(db) {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    return rows[0]?.schema;
  },
  withStartupLock(db, work) {
    // The lock lives as long as this transaction; the work itself runs on other
    // pooled connections. Ending the transaction (or losing its connection) releases it.
    return db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(current_schema() || ':keyward-startup'))`.execute(trx);
      return work();
    });
  },
  isUniqueViolation(error) {
    return (error as { code?: unknown } | null)?.code === '23505';
  },
  truncateTimestamp(instant, unit) {
    // date_trunc on a timestamptz follows the session's time zone; buckets are UTC.
    return sql<Date>`(date_trunc(${sql.raw(POSTGRES_TRUNCATION_FIELD[unit])}, ${instant} at time zone 'UTC') at time zone 'UTC')`;
  },
  isUnavailable(error) {
    for (const each of causes(error)) {
      if (isNetworkFailure(each)) return true;
      if (typeof each.message === 'string' && PG_CONNECTION_MESSAGES.test(each.message)) return true;
      const code = each.code;
      // SQLSTATE classes: 08 connection exception, 53 insufficient resources (too many
      // connections, disk full), 57P01-57P05 shut down, restarting or idle session killed;
      // 40001/40P01 are not here: serialization failures are the caller's to retry.
      if (typeof code === 'string' && /^(08...|53...|57P0[1-5])$/.test(code)) return true;
    }
    return false;
  },
  jsonArrayRows(json, types) {
    return {
      rows: sql`jsonb_array_elements(${json}::jsonb)`.as('r'),
      columns: types.map((type, index) => sql`(r ->> ${sql.lit(index)})${sql.raw(POSTGRES_JSON_CAST[type])}`),
    };
  },
};

export function dialectCapabilities(name: DialectName): DialectCapabilities {
  return name === 'postgres' ? postgresCapabilities : sqliteCapabilities;
}

/**
 * The capabilities of the dialect a Kysely instance (or transaction) runs on,
 * for callers that hold only the instance.
 */
export function capabilitiesOf<DB>(db: Kysely<DB>): DialectCapabilities {
  const introspector = db.introspection;
  if (introspector instanceof PostgresIntrospector) return postgresCapabilities;
  if (introspector instanceof SqliteIntrospector) return sqliteCapabilities;
  throw new TypeError('Keyward storage runs on SQLite or PostgreSQL only');
}
