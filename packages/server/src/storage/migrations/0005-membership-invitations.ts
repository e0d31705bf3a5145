// Membership invitations (issue 8): an organization invites an email, and
// nobody becomes a member until the person accepts. Keyed by email, not by
// user, so an invitation looks the same whether or not the email has an account.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function membershipInvitations(capabilities: DialectCapabilities): Migration {
  const timestamp = capabilities.timestampType;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('membership_invitations')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('email', 'text', (col) => col.notNull())
        .addColumn('role', 'text', (col) => col.notNull())
        // JSON array of resource ids; null = all resources.
        .addColumn('resource_ids', 'text')
        // SHA-256 of the link's secret; the secret itself is never stored.
        .addColumn('invite_digest', 'text', (col) => col.notNull().unique())
        .addColumn('expires_at', timestamp, (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addUniqueConstraint('membership_invitations_organization_email_key', ['organization_id', 'email'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('membership_invitations').execute();
    },
  };
}
