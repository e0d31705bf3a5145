// Opens the one database Keyward stores everything in: an SQLite file under
// the data directory by default, PostgreSQL when DATABASE_URL says so.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CamelCasePlugin, Kysely, PostgresDialect, type Dialect } from 'kysely';
import pg from 'pg';
import { dialectCapabilities, type DialectCapabilities, type DialectName } from './dialect-capabilities.ts';
import type { Schema } from './schema.ts';
import { createSqliteDialect } from './sqlite-dialect.ts';
import { SqliteReader } from './sqlite-reader.ts';

export const SQLITE_FILE_NAME = 'keyward.db';

export interface OpenDatabaseOptions {
  /** `postgres://…` (or `postgresql://…`) selects PostgreSQL; unset or empty selects SQLite. */
  databaseUrl?: string | undefined;
  /** Directory holding the SQLite file; created with mode 0700 when missing. */
  dataDir: string;
  /** PostgreSQL only: the schema to work in (tests use one fresh schema each). */
  searchPath?: string | undefined;
  /**
   * PostgreSQL only: an idle pooled connection failed (the server restarted,
   * say). The pool has already dropped it; this is for logging.
   */
  onPoolError?: ((error: Error) => void) | undefined;
}

export interface Database {
  db: Kysely<Schema>;
  dialect: DialectName;
  capabilities: DialectCapabilities;
  /** Closes the file or the pool; safe to call twice. */
  close(): Promise<void>;
  /** PostgreSQL: the pool's connections now (for metrics); null on SQLite. */
  poolStats(): { total: number; idle: number; waiting: number; max: number } | null;
  /**
   * SQLite: a read-only connection of its own for the verification path's
   * lookups (see sqlite-reader.ts); absent or null on PostgreSQL, whose pool
   * already reads beside the writers.
   */
  reader?: SqliteReader | null | undefined;
}

/** PostgreSQL's type id for int8 (bigint, and what count(*) returns). */
const INT8_OID = 20;
const CONNECT_TIMEOUT_MS = 5000;
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

function parseInt8(value: string): number {
  const parsed = Number(value);
  // Counts and balances stay far below 2^53; anything above would silently round.
  if (!Number.isSafeInteger(parsed)) throw new RangeError(`int8 value ${value} does not fit a JavaScript number`);
  return parsed;
}

function postgresDialect(options: OpenDatabaseOptions & { databaseUrl: string }): { dialect: Dialect; pool: pg.Pool } {
  if (options.searchPath !== undefined && !SCHEMA_NAME.test(options.searchPath)) {
    throw new TypeError(`Invalid schema name for search_path: ${options.searchPath}`);
  }
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    options: options.searchPath ? `-c search_path=${options.searchPath}` : undefined,
    // Without a limit, a request waits forever for a server that does not answer;
    // with one it fails, and answers 503 with Retry-After.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // Notices a peer that vanished (a failed-over server, a cut network) on idle connections.
    keepAlive: true,
    // Per pool rather than pg.types.setTypeParser, so nothing global changes.
    types: {
      getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)),
    },
  });
  // Without a listener an idle client's error would crash the process.
  pool.on('error', (error) => options.onPoolError?.(error));
  // The pool listens only to idle clients. A checked-out client whose connection
  // breaks between queries (or whose late write fails after the query already
  // failed) emits 'error' with nobody listening, which would end the process;
  // the query in flight, if any, gets its own error and answers 503.
  pool.on('connect', (client) => client.on('error', (error) => options.onPoolError?.(error)));
  return { dialect: new PostgresDialect({ pool }), pool };
}

function sqliteDialect(dataDir: string): Dialect {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return createSqliteDialect(sqliteFileOf(dataDir));
}

function sqliteFileOf(dataDir: string): string {
  return join(dataDir, SQLITE_FILE_NAME);
}

/**
 * Opens (but does not migrate) the database.
 *
 * @example
 * const database = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: './data' });
 * await migrateToLatest(database);
 * const store = new KyselyStore(database.db);
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.databaseUrl?.trim() ?? '';
  if (url !== '' && !isPostgresUrl(url)) {
    throw new TypeError('DATABASE_URL must be a postgres:// or postgresql:// URL (leave it unset to use SQLite)');
  }
  const name: DialectName = url === '' ? 'sqlite' : 'postgres';
  const postgres = name === 'postgres' ? postgresDialect({ ...options, databaseUrl: url }) : null;
  const dialect = postgres?.dialect ?? sqliteDialect(options.dataDir);
  const db = new Kysely<Schema>({ dialect, plugins: [new CamelCasePlugin()] });
  const pool = postgres?.pool;
  const reader = postgres ? null : new SqliteReader(sqliteFileOf(options.dataDir));
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect: name,
    capabilities: dialectCapabilities(name),
    reader,
    close() {
      closing ??= db.destroy().finally(() => reader?.close());
      return closing;
    },
    poolStats: () => (pool ? { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 } : null),
  };
}
