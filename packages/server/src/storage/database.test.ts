import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, SQLITE_FILE_NAME, type Database } from './database.ts';
import { appliedMigrations as appliedMigrationsNow, migrateToLatest as migrateToLatestNow } from './migrate.ts';
import { allMigrations } from './migrations/index.ts';
import { describeEachDialect, whileSchemasAreStill } from './test-databases.ts';

// The migrator introspects every schema on the server; other test workers
// create and drop theirs meanwhile, so these calls wait for a quiet moment.
const appliedMigrations = (database: Database) => whileSchemasAreStill(() => appliedMigrationsNow(database));
const migrateToLatest = (database: Database) => whileSchemasAreStill(() => migrateToLatestNow(database));
// Every registered migration, in order: adding one does not mean editing these tests.
const everyMigration = (database: Database) => Object.keys(allMigrations(database.capabilities));

describe('openDatabase', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('creates the data directory (mode 0700) and the SQLite file in it', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'keyward-data-'));
    cleanups.push(() => rm(parent, { recursive: true, force: true }));
    const dataDir = join(parent, 'nested', 'data');
    const database = await openDatabase({ dataDir });
    cleanups.push(() => database.close());
    await migrateToLatest(database);
    expect(database.dialect).toBe('sqlite');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, SQLITE_FILE_NAME))).isFile()).toBe(true);
    await database.close();
    await database.close();
  });

  it('refuses a DATABASE_URL that is not PostgreSQL', async () => {
    await expect(openDatabase({ databaseUrl: 'mysql://localhost/keyward', dataDir: tmpdir() })).rejects.toThrow(/postgres:\/\//);
  });

  it('refuses a search_path that is not a plain schema name', async () => {
    await expect(openDatabase({ databaseUrl: 'postgres://localhost/keyward', dataDir: tmpdir(), searchPath: 'a -c x=y' })).rejects.toThrow(/schema name/);
  });
});

describeEachDialect('migrations', (open, dialect) => {
  const opened: Database[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((database) => database.close()));
  });

  async function openOne(): Promise<Database> {
    const database = await open();
    opened.push(database);
    return database;
  }

  it('brings a database to the latest schema, and running again changes nothing', async () => {
    const database = await openOne();
    expect(database.dialect).toBe(dialect);
    expect(everyMigration(database).slice(0, 2)).toEqual(['0001_initial_schema', '0002_token_disabled_by']);
    expect(await appliedMigrations(database)).toEqual(everyMigration(database));
    await migrateToLatest(database);
    expect(await appliedMigrations(database)).toEqual(everyMigration(database));
    // Only this database's own tables: other test schemas may exist beside it on PostgreSQL.
    const tables = (
      dialect === 'postgres'
        ? (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_name not like 'kysely_%'`.execute(database.db)).rows.map((row) => row.name)
        : (await database.db.introspection.getTables()).map((table) => table.name)
    ).sort();
    expect(tables).toEqual(['api_clients', 'audit_events', 'job_leases', 'membership_invitations', 'membership_resources', 'memberships', 'organizations', 'resources', 'sessions', 'token_expiry_warnings', 'token_resources', 'tokens', 'usage_counts', 'users', 'webhook_deliveries', 'webhook_endpoints', 'webhook_events']);
  });

  it('keeps the hygiene policy of an organization (0008), off by default', async () => {
    const database = await openOne();
    await database.db.insertInto('organizations').values({ id: 'org_h', name: 'H', slug: 'h', maxLifetimeDays: 365, allowNoExpiry: 0, requireIpAllowlist: 0, disabledAt: null, createdAt: new Date() }).execute();
    const row = await database.db.selectFrom('organizations').select(['revokeUnusedAfterDays', 'retentionDays']).where('id', '=', 'org_h').executeTakeFirstOrThrow();
    expect(row).toEqual({ revokeUnusedAfterDays: null, retentionDays: null });
  });

  it('migrates side by side with another database on the same server', async () => {
    const first = await openOne();
    const second = await openOne();
    expect(await appliedMigrations(first)).toEqual(everyMigration(first));
    expect(await appliedMigrations(second)).toEqual(everyMigration(second));
  });

  it('reads counts and 64-bit integers as numbers', async () => {
    const database = await openOne();
    const { rows } = await sql<{ count: unknown; big: unknown }>`select count(*) as count, cast(${2 ** 40} as bigint) as big from users`.execute(database.db);
    expect(rows[0]).toEqual({ count: 0, big: 2 ** 40 });
  });

  it('enforces foreign keys', async () => {
    const database = await openOne();
    const insert = database.db.insertInto('memberships').values({ organizationId: 'org_missing', userId: 'usr_missing', role: 'owner', allResources: 1, createdAt: new Date() }).execute();
    await expect(insert).rejects.toThrow(/foreign key/i);
  });
});
