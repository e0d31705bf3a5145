// Kysely over Node's built-in node:sqlite: nothing to compile or install.
// Kysely's SqliteDialect expects a better-sqlite3-like database; this adapter
// supplies the few members it uses.
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { LRUCache } from 'lru-cache';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type LimitNode,
  type OffsetNode,
  type OperationNode,
  type QueryCompiler,
  type SqliteDatabase,
  type SqliteStatement,
  type ValueNode,
} from 'kysely';

/** node:sqlite binds only null, numbers, bigints, strings and bytes. */
export function toSqliteParameter(value: unknown): SQLInputValue {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') return value;
  if (ArrayBuffer.isView(value)) return value as SQLInputValue;
  throw new TypeError(`Cannot bind a ${typeof value} as an SQLite parameter`);
}

function toSqliteParameters(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters.map(toSqliteParameter);
}

class NodeSqliteStatement implements SqliteStatement {
  readonly reader: boolean;
  readonly statement: StatementSync;

  constructor(statement: StatementSync) {
    this.statement = statement;
    // Any statement that yields columns (a select, or a write with `returning`)
    // must run through all(); run() would execute it and drop the rows.
    this.reader = statement.columns().length > 0;
  }

  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.statement.all(...toSqliteParameters(parameters));
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    const { changes, lastInsertRowid } = this.statement.run(...toSqliteParameters(parameters));
    return { changes, lastInsertRowid };
  }

  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.statement.iterate(...toSqliteParameters(parameters));
  }
}

/** Distinct query shapes the app runs are a few hundred at most. */
const STATEMENT_CACHE_SIZE = 500;

/** The better-sqlite3-shaped view of a DatabaseSync that Kysely's driver calls. */
export class NodeSqliteDatabase implements SqliteDatabase {
  readonly database: DatabaseSync;
  // Preparing costs more than running a small indexed query, and Kysely asks
  // for a statement on every execution; SQLite re-prepares a cached one by
  // itself if the schema changes. Kysely's driver runs one query at a time.
  readonly #statements = new LRUCache<string, NodeSqliteStatement>({ max: STATEMENT_CACHE_SIZE });

  constructor(database: DatabaseSync) {
    this.database = database;
  }

  prepare(sql: string): SqliteStatement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = new NodeSqliteStatement(this.database.prepare(sql));
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  close(): void {
    this.#statements.clear();
    if (this.database.isOpen) this.database.close();
  }
}

/** How long a statement waits for another process's lock before failing. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/**
 * Opens the file with the settings every Keyward SQLite database uses:
 * WAL so readers never block the writer, foreign keys enforced, a busy
 * timeout for a second process (the CLI) on the same file, and
 * synchronous=FULL because an acknowledged write must survive a power cut
 * (NORMAL in WAL mode may lose the last commits).
 */
export function openSqliteFile(filename: string): DatabaseSync {
  // The busy timeout comes first: switching a new file to WAL takes its lock,
  // and replicas started together on one empty data dir would otherwise fail
  // at once with "database is locked" while another one is migrating.
  const database = new DatabaseSync(filename, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    database.exec(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    database.exec('pragma journal_mode = WAL');
    database.exec('pragma foreign_keys = ON');
    database.exec('pragma synchronous = FULL');
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
}

/**
 * Starts write transactions with `begin immediate`: a deferred transaction that
 * reads first and writes later fails at once with SQLITE_BUSY (the busy timeout
 * does not apply to the lock upgrade) when another process wrote meanwhile.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * SQLite runs DDL inside transactions; saying so makes Kysely's Migrator run
 * each migration run in one (`begin immediate`), so two processes starting
 * together on one file migrate one after the other instead of both creating
 * the same tables.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * Writes `limit` and `offset` counts into the SQL instead of binding them.
 * SQLite (3.53 here) lets a bound LIMIT shape the query plan, so binding one
 * expires the prepared statement and the next step re-prepares it: every
 * execution of a cached statement with `limit ?` paid a full prepare (about
 * 40 µs for the verification lookup, four times the lookup itself). Only
 * safe integers are written inline, so nothing else can reach the SQL text;
 * the counts the app uses are a handful of constants and page sizes.
 */
export class InlineLimitSqliteQueryCompiler extends SqliteQueryCompiler {
  protected override visitLimit(node: LimitNode): void {
    if (!this.appendCount('limit ', node.limit)) super.visitLimit(node);
  }

  protected override visitOffset(node: OffsetNode): void {
    if (!this.appendCount('offset ', node.offset)) super.visitOffset(node);
  }

  private appendCount(keyword: string, count: OperationNode): boolean {
    if (count.kind !== 'ValueNode') return false;
    const { value } = count as ValueNode;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return false;
    this.append(keyword);
    this.append(String(value));
    return true;
  }
}

class NodeSqliteDialect extends SqliteDialect {
  readonly database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    super({ database });
    this.database = database;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.database });
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  override createQueryCompiler(): QueryCompiler {
    return new InlineLimitSqliteQueryCompiler();
  }
}

/** A Kysely dialect over an SQLite file opened with {@link openSqliteFile}; `db.destroy()` closes it. */
export function createSqliteDialect(filename: string): SqliteDialect {
  return new NodeSqliteDialect(new NodeSqliteDatabase(openSqliteFile(filename)));
}
