// Verification counts per minute bucket (SPEC §6), written in batches by the
// usage recorder. Snake_case against a plugin-free Kysely, like 0001.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function usageCounts(capabilities: DialectCapabilities): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // No foreign keys on purpose: one flush writes many rows in one statement,
      // and a single row naming a vanished organization or token must not make
      // the whole batch fail on every retry. token_id and client_id are '' when
      // the verification named no known token (or a personal token, for the
      // client), so they can take part in the primary key.
      await db.schema
        .createTable('usage_counts')
        .addColumn('bucket_start', capabilities.timestampType, (col) => col.notNull())
        .addColumn('organization_id', 'text', (col) => col.notNull())
        .addColumn('token_id', 'text', (col) => col.notNull())
        .addColumn('client_id', 'text', (col) => col.notNull())
        .addColumn('code', 'text', (col) => col.notNull())
        .addColumn('count', capabilities.bigIntegerType, (col) => col.notNull())
        .addPrimaryKeyConstraint('usage_counts_pk', ['organization_id', 'bucket_start', 'token_id', 'code'])
        .execute();
      await db.schema.createIndex('usage_counts_organization_client_bucket_idx').on('usage_counts').columns(['organization_id', 'client_id', 'bucket_start']).execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('usage_counts').execute();
    },
  };
}
