// membership_invitations rows ↔ records.
import type { Insertable, Selectable } from 'kysely';
import type { Invitation } from '@keyward/core';
import { roleFromColumn } from './membership-rows.ts';
import { fromOptionalJson, toJson, type TimestampReader } from './row-values.ts';
import type { MembershipInvitationsTable } from './schema.ts';

export function invitationFromRow(row: Selectable<MembershipInvitationsTable>, read: TimestampReader): Invitation {
  return {
    id: row.id,
    organizationId: row.organizationId,
    email: row.email,
    role: roleFromColumn(row.role),
    resourceIds: fromOptionalJson<string[]>(row.resourceIds) ?? 'all',
    expiresAt: read(row.expiresAt),
    createdAt: read(row.createdAt),
  };
}

export function invitationToRow(invitation: Invitation, inviteDigest: string): Insertable<MembershipInvitationsTable> {
  return {
    id: invitation.id,
    organizationId: invitation.organizationId,
    email: invitation.email,
    role: invitation.role,
    resourceIds: invitation.resourceIds === 'all' ? null : toJson(invitation.resourceIds),
    inviteDigest,
    expiresAt: invitation.expiresAt,
    createdAt: invitation.createdAt,
  };
}
