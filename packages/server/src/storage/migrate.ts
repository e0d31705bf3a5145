// Brings the schema to the latest version. Safe to run from every replica at
// start: Kysely takes a lock (an advisory lock on PostgreSQL) and runs each
// migration once, inside a transaction.
import { Migrator, type MigrationResult } from 'kysely';
import type { Database } from './database.ts';
import { allMigrations } from './migrations/index.ts';

export class MigrationError extends Error {
  readonly results: readonly MigrationResult[];

  constructor(message: string, results: readonly MigrationResult[], cause: unknown) {
    super(message, { cause });
    this.name = 'MigrationError';
    this.results = results;
  }
}

function createMigrator(database: Database, migrationTableSchema: string | undefined): Migrator {
  return new Migrator({
    // Migrations spell out snake_case themselves; no plugin rewrites them.
    db: database.db.withoutPlugins(),
    provider: { getMigrations: async () => allMigrations(database.capabilities) },
    migrationTableSchema,
  });
}

/** Applies every pending migration; throws a {@link MigrationError} naming the one that failed. */
export async function migrateToLatest(database: Database): Promise<void> {
  const schema = await database.capabilities.migrationTableSchema(database.db.withoutPlugins());
  const { error, results = [] } = await createMigrator(database, schema).migrateToLatest();
  if (error === undefined) return;
  const failed = results.find((result) => result.status === 'Error');
  const reason = error instanceof Error ? error.message : String(error);
  const where = failed ? `migration ${failed.migrationName} failed` : 'migrations could not run';
  throw new MigrationError(`Database ${database.dialect}: ${where}: ${reason}`, results, error);
}

/** Names of the migrations already applied, oldest first. */
export async function appliedMigrations(database: Database): Promise<string[]> {
  const schema = await database.capabilities.migrationTableSchema(database.db.withoutPlugins());
  const migrations = await createMigrator(database, schema).getMigrations();
  return migrations.filter((migration) => migration.executedAt !== undefined).map((migration) => migration.name);
}
