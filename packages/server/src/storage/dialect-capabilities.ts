// The few places where SQLite and PostgreSQL really differ, as named
// capabilities. Queries and migrations ask for a capability; nothing else
// checks which dialect it runs on.
import { PostgresIntrospector, SqliteIntrospector, sql, type Expression, type Kysely, type QueryExecutorProvider, type RawBuilder } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

/** A calendar unit an instant can be rounded down to, in UTC. */
export type TruncationUnit = 'hour' | 'day';

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
}

// Closed sets spelled as SQL text: never built from input.
const SQLITE_TRUNCATION_FORMAT: Record<TruncationUnit, string> = { hour: "'%Y-%m-%dT%H:00:00.000Z'", day: "'%Y-%m-%dT00:00:00.000Z'" };
const POSTGRES_TRUNCATION_FIELD: Record<TruncationUnit, string> = { hour: "'hour'", day: "'day'" };

function invalidTimestamp(value: unknown): never {
  throw new TypeError(`Not a stored timestamp: ${String(value)}`);
}

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
  isUniqueViolation(error) {
    return (error as { code?: unknown } | null)?.code === '23505';
  },
  truncateTimestamp(instant, unit) {
    // date_trunc on a timestamptz follows the session's time zone; buckets are UTC.
    return sql<Date>`(date_trunc(${sql.raw(POSTGRES_TRUNCATION_FIELD[unit])}, ${instant} at time zone 'UTC') at time zone 'UTC')`;
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
