// Token hygiene (issue 13): the organization's unused-token and retention
// policy, and indexes for the jobs that apply them (expired tokens, old audit
// events and webhook events are found by time, not by scanning every row).
import type { Kysely, Migration } from 'kysely';

export function tokenHygiene(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // null = off (never revoke for lack of use; keep forever).
      await db.schema.alterTable('organizations').addColumn('revoke_unused_after_days', 'integer').execute();
      await db.schema.alterTable('organizations').addColumn('retention_days', 'integer').execute();
      await db.schema.createIndex('tokens_expires_at_idx').on('tokens').column('expires_at').execute();
      await db.schema.createIndex('tokens_revoked_at_idx').on('tokens').column('revoked_at').execute();
      await db.schema.createIndex('webhook_events_organization_created_idx').on('webhook_events').columns(['organization_id', 'created_at']).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('webhook_events_organization_created_idx').execute();
      await db.schema.dropIndex('tokens_revoked_at_idx').execute();
      await db.schema.dropIndex('tokens_expires_at_idx').execute();
      await db.schema.alterTable('organizations').dropColumn('retention_days').execute();
      await db.schema.alterTable('organizations').dropColumn('revoke_unused_after_days').execute();
    },
  };
}
