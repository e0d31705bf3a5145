// The few places where SQLite and PostgreSQL really differ, as named
// capabilities. Queries and migrations ask for a capability; nothing else
// checks which dialect it runs on.
import { PostgresIntrospector, SqliteIntrospector, sql, type Kysely, type QueryExecutorProvider } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

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
}

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
