// Verification (issue 9): when a token's quota was last refilled, and an API
// client's own rate limit shared by all its service tokens.
import type { Kysely, Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';

export function quotasAndClientLimits(capabilities: DialectCapabilities): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // The start of the refill period the current `remaining` belongs to; null = never refilled.
      await db.schema.alterTable('tokens').addColumn('quota_period_start', capabilities.timestampType).execute();
      // JSON RateLimitSetting or null.
      await db.schema.alterTable('api_clients').addColumn('rate_limit', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('api_clients').dropColumn('rate_limit').execute();
      await db.schema.alterTable('tokens').dropColumn('quota_period_start').execute();
    },
  };
}
