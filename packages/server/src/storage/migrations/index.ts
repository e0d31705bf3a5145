// Every migration, in order. A static list rather than a scanned folder: it
// works the same from source, a bundle or a test, and a typo fails to compile.
import type { Migration } from 'kysely';
import type { DialectCapabilities } from '../dialect-capabilities.ts';
import { initialSchema } from './0001-initial-schema.ts';
import { tokenDisabledBy } from './0002-token-disabled-by.ts';
import { usageCounts } from './0003-usage-counts.ts';
import { quotasAndClientLimits } from './0004-quotas-and-client-limits.ts';
import { membershipInvitations } from './0005-membership-invitations.ts';
import { webhooks } from './0006-webhooks.ts';
import { expiryWarnings } from './0007-expiry-warnings.ts';
import { tokenHygiene } from './0008-token-hygiene.ts';
import { tokenImport } from './0009-token-import.ts';

/** Names sort in the order the migrations run; never rename or reorder a released one. */
export function allMigrations(capabilities: DialectCapabilities): Record<string, Migration> {
  return {
    '0001_initial_schema': initialSchema(capabilities),
    '0002_token_disabled_by': tokenDisabledBy(),
    '0003_usage_counts': usageCounts(capabilities),
    '0004_quotas_and_client_limits': quotasAndClientLimits(capabilities),
    '0005_membership_invitations': membershipInvitations(capabilities),
    '0006_webhooks': webhooks(capabilities),
    '0007_expiry_warnings': expiryWarnings(capabilities),
    '0008_token_hygiene': tokenHygiene(),
    '0009_token_import': tokenImport(),
  };
}
