// Runs a storage suite on every dialect: always SQLite, and PostgreSQL too when
// KEYWARD_TEST_DATABASE_URL is set. Each open() gives a fresh, migrated
// database: a new temp directory for SQLite, a new schema for PostgreSQL.
//
// Cleanup: the database that open() returns removes itself on close() (temp
// directory deleted, schema dropped). close() is safe to call twice, and
// whatever a suite forgot to close is closed in an afterAll, so a failing
// test leaves nothing behind either.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe } from 'vitest';
import { openDatabase, type Database } from './database.ts';
import type { DialectName } from './dialect-capabilities.ts';
import { migrateToLatest } from './migrate.ts';

export type OpenTestDatabase = () => Promise<Database>;

export const TEST_DATABASE_URL_VARIABLE = 'KEYWARD_TEST_DATABASE_URL';

export async function openSqliteTestDatabase(): Promise<Database> {
  const dataDir = await mkdtemp(join(tmpdir(), 'keyward-test-'));
  try {
    const database = await openDatabase({ dataDir });
    const cleaned = withCleanup(database, () => rm(dataDir, { recursive: true, force: true }));
    try {
      await migrateToLatest(database);
    } catch (error) {
      await cleaned.close();
      throw error;
    }
    return cleaned;
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

// Kysely's migrator introspects every schema of the database; a schema that
// another test worker drops at that moment breaks it. Creating, migrating and
// dropping test schemas one at a time (a session advisory lock) avoids that.
const SCHEMA_LOCK_KEY = 7_355_608;

async function withSchemaLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [SCHEMA_LOCK_KEY]);
    return await work();
  } finally {
    await client.query('select pg_advisory_unlock($1)', [SCHEMA_LOCK_KEY]).catch(() => {});
    await client.end();
  }
}

/**
 * Runs `work` (which introspects every schema, as the migrator does) while no
 * test schema is being created or dropped. Without PostgreSQL it just runs.
 */
export function whileSchemasAreStill<T>(work: () => Promise<T>): Promise<T> {
  const databaseUrl = process.env[TEST_DATABASE_URL_VARIABLE];
  return databaseUrl ? withSchemaLock(databaseUrl, work) : work();
}

async function openPostgresTestDatabase(databaseUrl: string): Promise<Database> {
  const schema = `kw_test_${randomBytes(6).toString('hex')}`;
  const database = await openDatabase({ databaseUrl, dataDir: tmpdir(), searchPath: schema });
  try {
    await withSchemaLock(databaseUrl, async () => {
      await sql`create schema ${sql.id(schema)}`.execute(database.db);
      await migrateToLatest(database);
    });
  } catch (error) {
    await database.close();
    throw error;
  }
  return withCleanup(database, async () => {}, async () => {
    await withSchemaLock(databaseUrl, async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
    });
  });
}

/** `beforeClose` runs while the connection is still open, `afterClose` once it is shut. */
function withCleanup(database: Database, afterClose: () => Promise<void>, beforeClose: () => Promise<void> = async () => {}): Database {
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    try {
      await beforeClose();
    } finally {
      try {
        await database.close();
      } finally {
        await afterClose();
      }
    }
  };
  return {
    ...database,
    close() {
      closing ??= close();
      return closing;
    },
  };
}

function opener(dialect: DialectName, databaseUrl: string | undefined): OpenTestDatabase {
  const unclosed = new Set<Database>();
  afterAll(async () => {
    await Promise.allSettled([...unclosed].map((database) => database.close()));
  });
  return async () => {
    const raw = dialect === 'postgres' ? await openPostgresTestDatabase(databaseUrl as string) : await openSqliteTestDatabase();
    const database: Database = {
      ...raw,
      close() {
        unclosed.delete(database);
        return raw.close();
      },
    };
    unclosed.add(database);
    return database;
  };
}

/**
 * Declares `fn`'s suite once per dialect. `open()` answers a fresh, migrated
 * database; close it when done (or leave it to the suite's afterAll).
 *
 * @example
 * describeEachDialect('KyselyStore', (open) => {
 *   let database: Database;
 *   beforeEach(async () => { database = await open(); });
 *   afterEach(() => database.close());
 *   it('…', async () => { … });
 * });
 */
export function describeEachDialect(title: string, fn: (open: OpenTestDatabase, dialect: DialectName) => void): void {
  describe(`${title} on SQLite`, () => {
    fn(opener('sqlite', undefined), 'sqlite');
  });
  const databaseUrl = process.env[TEST_DATABASE_URL_VARIABLE];
  if (databaseUrl) {
    describe(`${title} on PostgreSQL`, () => {
      fn(opener('postgres', databaseUrl), 'postgres');
    });
  }
}
