// Who disabled a token, and at what permission level, so that re-enabling it
// needs at least as much (an owner cannot undo an admin's disable).
import type { Kysely, Migration } from 'kysely';

export function tokenDisabledBy(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
      await db.schema.alterTable('tokens').addColumn('disabled_by_type', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('disabled_by_id', 'text').execute();
      await db.schema.alterTable('tokens').addColumn('disabled_by_permission', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('tokens').dropColumn('disabled_by_permission').execute();
      await db.schema.alterTable('tokens').dropColumn('disabled_by_id').execute();
      await db.schema.alterTable('tokens').dropColumn('disabled_by_type').execute();
    },
  };
}
