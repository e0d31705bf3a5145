// Records to the API's JSON shapes (SPEC §11). Nothing secret is mapped.
import { tokenStatus, type ApiClient, type AuditEvent, type Invitation, type Member, type MemberListItem, type Organization, type Resource, type TokenRecord } from '@keyward/core';

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

/**
 * A rotated-out token keeps working only until its grace period ends: that is
 * when it stops, whatever expiry it was created with, so the view says so.
 */
function graceEndOf(token: TokenRecord): Date | null {
  return token.rotatedAt ? (token.graceUntil ?? token.rotatedAt) : null;
}

export function tokenView(token: TokenRecord, now: Date) {
  const graceEndsAt = graceEndOf(token);
  const expiresAt = graceEndsAt && (!token.expiresAt || graceEndsAt < token.expiresAt) ? graceEndsAt : token.expiresAt;
  return {
    id: token.id,
    name: token.name,
    hint: token.hint,
    kind: token.kind,
    owner: token.owner,
    organizationId: token.organizationId,
    scopes: token.scopes,
    permission: token.permission,
    resources: token.resources,
    resourcesLimited: token.resourcesLimited,
    status: tokenStatus(token, now),
    allowedIps: token.allowedIps,
    rateLimit: token.rateLimit,
    metadata: token.metadata,
    remaining: token.remaining,
    refill: token.refill,
    createdAt: token.createdAt.toISOString(),
    expiresAt: iso(expiresAt),
    graceEndsAt: iso(graceEndsAt),
    lastUsedAt: iso(token.lastUsedAt),
    lastUsedIp: token.lastUsedIp,
    rotatedFrom: token.rotatedFrom,
  };
}

export function memberView(member: Member) {
  return {
    userId: member.userId,
    invitationId: null,
    email: member.email,
    role: member.role,
    resources: member.resourceIds === 'all' ? null : member.resourceIds,
    status: 'active' as const,
    hasPassword: member.hasPassword,
    createdAt: member.createdAt.toISOString(),
    expiresAt: null,
  };
}

/** A pending invitation, shaped like a member: the same for an email with an account and one without. */
export function invitationView(invitation: Invitation) {
  return {
    userId: null,
    invitationId: invitation.id,
    email: invitation.email,
    role: invitation.role,
    resources: invitation.resourceIds === 'all' ? null : invitation.resourceIds,
    status: 'invited' as const,
    hasPassword: null,
    createdAt: invitation.createdAt.toISOString(),
    expiresAt: invitation.expiresAt.toISOString(),
  };
}

export function memberListItemView(item: MemberListItem) {
  return item.kind === 'member' ? memberView(item.member) : invitationView(item.invitation);
}

export function resourceView(resource: Resource) {
  return { id: resource.id, type: resource.type, name: resource.name, createdAt: resource.createdAt.toISOString() };
}

export function clientView(client: ApiClient) {
  return { id: client.id, name: client.name, description: client.description, organizationId: client.organizationId, rateLimit: client.rateLimit, createdAt: client.createdAt.toISOString() };
}

export function organizationView(org: Organization) {
  return { id: org.id, name: org.name, slug: org.slug, tokenPolicy: org.tokenPolicy, createdAt: org.createdAt.toISOString() };
}

export function auditView(event: AuditEvent) {
  return {
    id: event.id,
    at: event.at.toISOString(),
    action: event.action,
    actor: event.actor,
    authMethod: event.authMethod,
    organizationId: event.organizationId,
    target: event.target,
    ip: event.ip,
    userAgent: event.userAgent,
    requestId: event.requestId,
    details: event.details,
  };
}
