// organizations rows ↔ records.
import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Organization, TokenPolicy } from '@keyward/core';
import { fromFlag, readOptionalTimestamp, toFlag, type TimestampReader } from './row-values.ts';
import type { OrganizationsTable } from './schema.ts';

export function organizationFromRow(row: Selectable<OrganizationsTable>, read: TimestampReader): Organization {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    tokenPolicy: {
      maxLifetimeDays: Number(row.maxLifetimeDays),
      allowNoExpiry: fromFlag(row.allowNoExpiry),
      requireIpAllowlist: fromFlag(row.requireIpAllowlist),
      revokeUnusedAfterDays: row.revokeUnusedAfterDays === null ? null : Number(row.revokeUnusedAfterDays),
      retentionDays: row.retentionDays === null ? null : Number(row.retentionDays),
    },
    disabledAt: readOptionalTimestamp(read, row.disabledAt),
    createdAt: read(row.createdAt),
  };
}

export function tokenPolicyToRow(policy: TokenPolicy): Updateable<OrganizationsTable> {
  return {
    maxLifetimeDays: policy.maxLifetimeDays,
    allowNoExpiry: toFlag(policy.allowNoExpiry),
    requireIpAllowlist: toFlag(policy.requireIpAllowlist),
    revokeUnusedAfterDays: policy.revokeUnusedAfterDays,
    retentionDays: policy.retentionDays,
  };
}

export function organizationToRow(org: Organization): Insertable<OrganizationsTable> {
  return {
    id: org.id,
    name: org.name,
    slug: org.slug,
    maxLifetimeDays: org.tokenPolicy.maxLifetimeDays,
    allowNoExpiry: toFlag(org.tokenPolicy.allowNoExpiry),
    requireIpAllowlist: toFlag(org.tokenPolicy.requireIpAllowlist),
    revokeUnusedAfterDays: org.tokenPolicy.revokeUnusedAfterDays,
    retentionDays: org.tokenPolicy.retentionDays,
    disabledAt: org.disabledAt,
    createdAt: org.createdAt,
  };
}
