// Signed webhooks (issue 13): endpoints per organization, an outbox of events
// written in the same transaction as the change each reports, and one delivery
// row per event and endpoint that the delivery worker claims, retries and logs.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function webhooks(capabilities: DialectCapabilities): Migration {
  const timestamp = capabilities.timestampType;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('webhook_endpoints')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('url', 'text', (col) => col.notNull())
        .addColumn('description', 'text')
        // JSON array of event types the endpoint receives.
        .addColumn('events', 'text', (col) => col.notNull())
        .addColumn('enabled', 'integer', (col) => col.notNull())
        // The signing secret, AES-256-GCM under a key derived from the keyring:
        // the server must sign with it, so it cannot be a one-way hash.
        .addColumn('secret_ciphertext', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('updated_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('webhook_endpoints_organization_idx').on('webhook_endpoints').columns(['organization_id', 'created_at']).execute();

      // No foreign key to the endpoint table from events: an event outlives the
      // endpoints it was fanned out to (a deleted endpoint takes its deliveries only).
      await db.schema
        .createTable('webhook_events')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('organization_id', 'text', (col) => col.notNull().references('organizations.id'))
        .addColumn('type', 'text', (col) => col.notNull())
        // JSON: the `data` of the delivered body. Never a secret.
        .addColumn('payload', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();

      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('event_id', 'text', (col) => col.notNull().references('webhook_events.id'))
        .addColumn('endpoint_id', 'text', (col) => col.notNull().references('webhook_endpoints.id'))
        .addColumn('organization_id', 'text', (col) => col.notNull())
        // pending → delivered | failed (gave up after the retry window).
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('attempts', 'integer', (col) => col.notNull())
        .addColumn('next_attempt_at', timestamp, (col) => col.notNull())
        // The claim: a worker owns the row until lease_until; a crashed worker's claim runs out.
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', timestamp)
        .addColumn('last_attempt_at', timestamp)
        .addColumn('last_status_code', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('last_duration_ms', 'integer')
        .addColumn('delivered_at', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addUniqueConstraint('webhook_deliveries_event_endpoint_key', ['event_id', 'endpoint_id'])
        .execute();
      // What the worker asks every poll: pending rows that are due.
      await db.schema.createIndex('webhook_deliveries_due_idx').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
      // The delivery log of one endpoint, newest first.
      await db.schema.createIndex('webhook_deliveries_endpoint_idx').on('webhook_deliveries').columns(['endpoint_id', 'created_at', 'id']).execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('webhook_deliveries').execute();
      await db.schema.dropTable('webhook_events').execute();
      await db.schema.dropTable('webhook_endpoints').execute();
    },
  };
}
