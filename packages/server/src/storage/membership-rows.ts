// memberships (+ membership_resources) rows ↔ records.
import type { Insertable, Selectable } from 'kysely';
import { isRole, type Member, type Membership, type Role } from '@keyward/core';
import { fromFlag, toFlag, type TimestampReader } from './row-values.ts';
import type { MembershipsTable } from './schema.ts';

export type MembershipRow = Selectable<MembershipsTable>;
export type MemberRow = MembershipRow & { email: string; hasPassword: unknown };

export function roleFromColumn(value: string): Role {
  if (!isRole(value)) throw new TypeError(`Unknown role in storage: ${value}`);
  return value;
}

/** `limitedTo` is the membership's resource list, read from membership_resources; ignored unless limited. */
export function membershipFromRow(row: MembershipRow, limitedTo: readonly string[] | undefined, read: TimestampReader): Membership {
  return {
    organizationId: row.organizationId,
    userId: row.userId,
    role: roleFromColumn(row.role),
    resourceIds: fromFlag(row.allResources) ? 'all' : [...(limitedTo ?? [])],
    createdAt: read(row.createdAt),
  };
}

export function memberFromRow(row: MemberRow, limitedTo: readonly string[] | undefined, read: TimestampReader): Member {
  // `password_hash is not null` comes back as a boolean from pg and as 0/1 from SQLite.
  return { ...membershipFromRow(row, limitedTo, read), email: row.email, hasPassword: Boolean(Number(row.hasPassword)) };
}

export function membershipToRow(membership: Membership): Insertable<MembershipsTable> {
  return {
    organizationId: membership.organizationId,
    userId: membership.userId,
    role: membership.role,
    allResources: toFlag(membership.resourceIds === 'all'),
    createdAt: membership.createdAt,
  };
}
