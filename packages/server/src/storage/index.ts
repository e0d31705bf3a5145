// Public surface of the storage module: explicit named re-exports only.
export { openDatabase, isPostgresUrl, SQLITE_FILE_NAME, type Database, type OpenDatabaseOptions } from './database.ts';
export { capabilitiesOf, dialectCapabilities, type DialectCapabilities, type DialectName } from './dialect-capabilities.ts';
export { migrateToLatest, appliedMigrations, MigrationError } from './migrate.ts';
export { KyselyStore } from './kysely-store.ts';
export { createSqliteDialect, openSqliteFile, NodeSqliteDatabase, toSqliteParameter } from './sqlite-dialect.ts';
export type { Schema } from './schema.ts';
