// Token import (issue 13): how each token's digest was made (an HMAC under the
// keyring, or the plain SHA-256 of a key imported as a hash, re-hashed on its
// first use), and the importer's stable id for a key, unique per
// organization, so a re-run of the same import creates no duplicates.
import type { Kysely, Migration } from 'kysely';

export function tokenImport(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('tokens').addColumn('hash_kind', 'text', (col) => col.notNull().defaultTo('hmac')).execute();
      await db.schema.alterTable('tokens').addColumn('external_id', 'text').execute();
      // NULLs are distinct in a unique index on both dialects: tokens made in Keyward have none.
      await db.schema.createIndex('tokens_organization_external_id_idx').on('tokens').columns(['organization_id', 'external_id']).unique().execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('tokens_organization_external_id_idx').execute();
      await db.schema.alterTable('tokens').dropColumn('external_id').execute();
      await db.schema.alterTable('tokens').dropColumn('hash_kind').execute();
    },
  };
}
