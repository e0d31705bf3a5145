// The first schema. Migrations are written in snake_case against a Kysely
// without plugins: what is written here is exactly what reaches the database.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function initialSchema(capabilities: DialectCapabilities): Migration {
  const timestamp = capabilities.timestampType;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('email', 'text', (col) => col.notNull().unique())
        .addColumn('password_hash', 'text')
        .addColumn('invite_digest', 'text', (col) => col.unique())
        .addColumn('invite_expires_at', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('organizations')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('slug', 'text', (col) => col.notNull().unique())
        .addColumn('max_lifetime_days', 'integer', (col) => col.notNull().defaultTo(365))
        .addColumn('allow_no_expiry', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('require_ip_allowlist', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('disabled_at', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('memberships')
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id'))
        .addColumn('role', 'text', (col) => col.notNull())
        .addColumn('all_resources', 'integer', (col) => col.notNull().defaultTo(1))
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addPrimaryKeyConstraint('memberships_pk', ['organization_id', 'user_id'])
        .execute();
      await db.schema.createIndex('memberships_user_id_idx').on('memberships').column('user_id').execute();

      await db.schema
        .createTable('resources')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('type', 'text', (col) => col.notNull())
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addUniqueConstraint('resources_organization_type_name_key', ['organization_id', 'type', 'name'])
        .execute();

      await db.schema
        .createTable('membership_resources')
        .addColumn('organization_id', 'text', (col) => col.notNull())
        .addColumn('user_id', 'text', (col) => col.notNull())
        .addColumn('resource_id', 'text', (col) => col.notNull().references('resources.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('membership_resources_pk', ['organization_id', 'user_id', 'resource_id'])
        .addForeignKeyConstraint('membership_resources_membership_fk', ['organization_id', 'user_id'], 'memberships', ['organization_id', 'user_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      // Deleting a resource cascades here; without the index that is a full scan.
      await db.schema.createIndex('membership_resources_resource_id_idx').on('membership_resources').column('resource_id').execute();

      await db.schema
        .createTable('api_clients')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('deleted_at', timestamp)
        .execute();
      await db.schema.createIndex('api_clients_organization_created_idx').on('api_clients').columns(['organization_id', 'created_at']).execute();

      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('owner_type', 'text', (col) => col.notNull())
        .addColumn('owner_id', 'text', (col) => col.notNull())
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('hint', 'text', (col) => col.notNull())
        .addColumn('digest', 'text', (col) => col.notNull().unique())
        .addColumn('secret_version', 'text', (col) => col.notNull())
        .addColumn('scopes', 'text', (col) => col.notNull())
        .addColumn('permission', 'text', (col) => col.notNull())
        .addColumn('resources_limited', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('expires_at', timestamp)
        .addColumn('disabled_at', timestamp)
        .addColumn('revoked_at', timestamp)
        .addColumn('revoked_reason', 'text')
        .addColumn('allowed_ips', 'text', (col) => col.notNull())
        .addColumn('rate_limit', 'text')
        .addColumn('metadata', 'text', (col) => col.notNull())
        .addColumn('remaining', capabilities.bigIntegerType)
        .addColumn('refill', 'text')
        .addColumn('lineage_id', 'text', (col) => col.notNull())
        .addColumn('rotated_from', 'text')
        .addColumn('rotated_at', timestamp)
        .addColumn('grace_until', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('last_used_at', timestamp)
        .addColumn('last_used_ip', 'text')
        .execute();
      await db.schema.createIndex('tokens_owner_idx').on('tokens').columns(['organization_id', 'owner_type', 'owner_id']).execute();
      await db.schema.createIndex('tokens_lineage_id_idx').on('tokens').column('lineage_id').execute();
      await db.schema.createIndex('tokens_organization_created_idx').on('tokens').columns(['organization_id', 'created_at']).execute();

      await db.schema
        .createTable('token_resources')
        .addColumn('token_id', 'text', (col) => col.notNull().references('tokens.id').onDelete('cascade'))
        .addColumn('resource_id', 'text', (col) => col.notNull().references('resources.id').onDelete('cascade'))
        .addColumn('rank', 'integer', (col) => col.notNull())
        .addPrimaryKeyConstraint('token_resources_pk', ['token_id', 'resource_id'])
        .execute();
      // Deleting a resource cascades here; without the index that is a full scan.
      await db.schema.createIndex('token_resources_resource_id_idx').on('token_resources').column('resource_id').execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text')
        .addColumn('at', timestamp, (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('actor_type', 'text', (col) => col.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('auth_method', 'text', (col) => col.notNull())
        .addColumn('target_type', 'text')
        .addColumn('target_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('audit_events_organization_at_idx').on('audit_events').columns(['organization_id', 'at']).execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('user_id', 'text', (col) => col.notNull().references('users.id').onDelete('cascade'))
        .addColumn('csrf_digest', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('expires_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of [
        'sessions',
        'audit_events',
        'token_resources',
        'tokens',
        'api_clients',
        'membership_resources',
        'resources',
        'memberships',
        'organizations',
        'users',
      ]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
