// Expiry warnings (issue 13): `token.expiring` at 60/30/7/1 days before a
// token expires, each at most once (a row per token and threshold), and a
// lease row per periodic job so one replica runs it at a time.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function expiryWarnings(capabilities: DialectCapabilities): Migration {
  const timestamp = capabilities.timestampType;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // The primary key is the "never twice": a second insert for the same threshold fails.
      await db.schema
        .createTable('token_expiry_warnings')
        .addColumn('token_id', 'text', (col) => col.notNull().references('tokens.id'))
        .addColumn('threshold_days', 'integer', (col) => col.notNull())
        .addColumn('sent_at', timestamp, (col) => col.notNull())
        .addPrimaryKeyConstraint('token_expiry_warnings_pk', ['token_id', 'threshold_days'])
        .execute();
      await db.schema
        .createTable('job_leases')
        .addColumn('name', 'text', (col) => col.primaryKey())
        .addColumn('owner', 'text', (col) => col.notNull())
        .addColumn('lease_until', timestamp, (col) => col.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('job_leases').execute();
      await db.schema.dropTable('token_expiry_warnings').execute();
    },
  };
}
