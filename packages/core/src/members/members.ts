import { randomBytes } from 'node:crypto';
import { ConflictError, ForbiddenError, NotFoundError, type FieldError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import type { MemberPageRequest, Store } from '../ports/store.ts';
import { isRoleAtLeast, type Role } from '../roles.ts';
import { canAccessResource } from '../services/access.ts';
import { auditEvent, publishSafely, SYSTEM_REQUEST, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import { normalizeEmail, sessionDigest } from '../auth/password-auth.ts';
import { throwIfAny } from '../tokens/token-settings.ts';
import type { Actor, Invitation, Member, MemberListItem, Page } from '../types.ts';

/** How long an invitation link works. */
export const INVITATION_TTL_MS = 7 * 86_400_000;

export interface AddMemberInput {
  email: string;
  role: Role;
  /** Limit the member to these resources; omitted = all. */
  resources?: string[] | undefined;
}

export interface InvitedMember {
  invitation: Invitation;
  /** The one-time secret of the invitation link; only its digest is stored. */
  inviteToken: string;
}

/** Nobody hands out a role above their own, or resources outside their own. */
async function checkGrant(store: Store, actor: Actor, role: Role | undefined, resources: string[] | undefined): Promise<void> {
  if (role && !isRoleAtLeast(actor.permission, role)) throw new ForbiddenError(`You cannot grant the ${role} role: yours is ${actor.permission}.`);
  if (!resources) return;
  const errors: FieldError[] = [];
  if (new Set(resources).size !== resources.length) errors.push({ field: 'resources', message: 'must not repeat a resource' });
  throwIfAny(errors);
  const found = new Set((await store.findResourcesByIds(actor.organizationId, resources)).map((r) => r.id));
  const outside = resources.filter((id) => !found.has(id) || !canAccessResource(actor, id));
  if (outside.length > 0) throw new ForbiddenError(`You cannot grant resource ${outside.join(', ')}: it is not one you can access.`);
}

async function findMember(store: Store, organizationId: string, userId: string): Promise<Member> {
  const membership = await store.findMembership(organizationId, userId);
  const user = membership ? await store.findUserById(userId) : null;
  if (!membership || !user) throw new NotFoundError('member');
  const withPassword = await store.findUserByEmail(user.email);
  return { ...membership, email: user.email, hasPassword: Boolean(withPassword?.passwordHash) };
}

/** A member whose role is above the actor's is out of the actor's reach. */
function checkCanManage(actor: Actor, member: { role: Role }): void {
  if (!isRoleAtLeast(actor.permission, member.role)) throw new ForbiddenError(`You cannot change a member whose role (${member.role}) is above yours.`);
}

async function checkNotLastOwner(store: Store, member: Member): Promise<void> {
  if (member.role === 'owner' && (await store.countOwners(member.organizationId)) <= 1) {
    throw new ConflictError('An organization must keep at least one owner.');
  }
}

function isInvitationId(id: string): boolean {
  return id.startsWith('inv_');
}

/**
 * Members and pending invitations, newest first. Rows created at the same
 * instant list invitations before members; ids are only ever compared within
 * one kind, by the database, so the order is the same on every dialect.
 */
export async function listMembers(deps: ServiceDeps, actor: Actor, query: { cursor?: string | undefined; limit?: number | undefined }): Promise<Page<MemberListItem>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const after = decodeCursor(query.cursor);
  const afterInvitation = after !== undefined && isInvitationId(after.id);
  // After an invitation, members of that same instant are all still to come; after a member, invitations of that instant are all listed.
  const memberPage: MemberPageRequest = { after: after && afterInvitation ? { at: after.at, id: null } : after, limit: limit + 1 };
  const invitationPage: MemberPageRequest = { after: after && !afterInvitation ? { at: after.at, id: '' } : after, limit: limit + 1 };
  const [members, invitations] = await Promise.all([deps.store.listMembers(actor.organizationId, memberPage), deps.store.listInvitations(actor.organizationId, invitationPage)]);
  const rows: MemberListItem[] = [
    ...invitations.map((invitation) => ({ kind: 'invitation' as const, invitation })),
    ...members.map((member) => ({ kind: 'member' as const, member })),
  ];
  // Stable: within a kind, the database's order stands.
  rows.sort((a, b) => createdAtOf(b).getTime() - createdAtOf(a).getTime());
  return toPage(rows, limit, (row) => ({ at: createdAtOf(row), id: row.kind === 'member' ? row.member.userId : row.invitation.id }));
}

function createdAtOf(row: MemberListItem): Date {
  return row.kind === 'member' ? row.member.createdAt : row.invitation.createdAt;
}

/** A member by user id, or a pending invitation by its `inv_` id. */
export async function getMember(deps: ServiceDeps, actor: Actor, id: string): Promise<MemberListItem> {
  if (isInvitationId(id)) {
    const invitation = await deps.store.findInvitation(actor.organizationId, id);
    if (!invitation) throw new NotFoundError('member');
    return { kind: 'invitation', invitation };
  }
  return { kind: 'member', member: await findMember(deps.store, actor.organizationId, id) };
}

/**
 * Invites a person by email. The answer, its timing and the member list are
 * the same whether or not the email has an account here: nobody becomes a
 * member, and no account is created or changed, until the person accepts.
 * Inviting the same email again replaces the earlier link.
 */
export async function addMember(deps: ServiceDeps, actor: Actor, input: AddMemberInput): Promise<InvitedMember> {
  const now = deps.now();
  const email = normalizeEmail(input.email);
  const inviteToken = randomBytes(32).toString('base64url');
  const invitation: Invitation = {
    id: newId('inv'),
    organizationId: actor.organizationId,
    email,
    role: input.role,
    resourceIds: input.resources ?? 'all',
    expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
    createdAt: now,
  };
  await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    await checkGrant(store, actor, input.role, input.resources);
    // Omitting resources means all of them, which a limited caller does not hold to give.
    if (input.resources === undefined && actor.resourceIds !== 'all') throw new ForbiddenError('You cannot grant access to all resources: yours are limited.');
    // The member list already tells this caller who is a member, so saying it here reveals nothing new.
    if (await store.isMemberByEmail(actor.organizationId, email)) throw new ConflictError(`${email} is already a member.`);
    await store.replaceInvitation(invitation, sessionDigest(inviteToken));
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'member.invited', organizationId: actor.organizationId, target: { type: 'invitation', id: invitation.id }, details: { email, role: input.role } }),
    );
  });
  return { invitation, inviteToken };
}

export async function updateMember(deps: ServiceDeps, actor: Actor, userId: string, changes: { role?: Role | undefined; resources?: string[] | null | undefined }): Promise<Member> {
  const member = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    const current = await findMember(store, actor.organizationId, userId);
    checkCanManage(actor, current);
    await checkGrant(store, actor, changes.role, changes.resources ?? undefined);
    if (changes.role && changes.role !== 'owner') await checkNotLastOwner(store, current);
    const resourceIds = changes.resources === null ? 'all' : changes.resources;
    if (resourceIds === 'all' && actor.resourceIds !== 'all') throw new ForbiddenError('You cannot grant access to all resources: yours are limited.');
    await store.updateMembership(actor.organizationId, userId, { role: changes.role, resourceIds });
    await store.insertAuditEvent(
      auditEvent(deps, actor, {
        action: 'member.updated',
        organizationId: actor.organizationId,
        target: { type: 'user', id: userId },
        details: { from: { role: current.role }, to: { role: changes.role ?? current.role }, resourcesChanged: changes.resources !== undefined },
      }),
    );
    return findMember(store, actor.organizationId, userId);
  });
  // Their tokens are narrowed at once: verifiers drop what they cached.
  await publishSafely(deps, { type: 'member.changed', organizationId: actor.organizationId, userId });
  return member;
}

/** Removing a member revokes their personal tokens in this organization, in the same transaction. */
export async function removeMember(deps: ServiceDeps, actor: Actor, userId: string): Promise<void> {
  if (isInvitationId(userId)) return cancelInvitation(deps, actor, userId);
  const revoked = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    const current = await findMember(store, actor.organizationId, userId);
    checkCanManage(actor, current);
    await checkNotLastOwner(store, current);
    const ids = await store.findUnrevokedTokenIds({ organizationId: actor.organizationId, userId });
    const revokedIds = await store.revokeTokens(ids, deps.now(), 'member_removed');
    await store.deleteMembership(actor.organizationId, userId);
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'member.removed', organizationId: actor.organizationId, target: { type: 'user', id: userId }, details: { revokedTokenIds: revokedIds } }),
    );
    return revokedIds;
  });
  await publishSafely(deps, { type: 'member.changed', organizationId: actor.organizationId, userId });
  if (revoked.length > 0) await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: revoked });
}

/** Withdraws a pending invitation: its link stops working. */
async function cancelInvitation(deps: ServiceDeps, actor: Actor, invitationId: string): Promise<void> {
  await deps.store.transaction(async (store) => {
    const invitation = await store.findInvitation(actor.organizationId, invitationId);
    if (!invitation) throw new NotFoundError('member');
    checkCanManage(actor, invitation);
    await store.deleteInvitation(actor.organizationId, invitation.id);
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'member.invitation_cancelled', organizationId: actor.organizationId, target: { type: 'invitation', id: invitation.id }, details: { email: invitation.email } }),
    );
  });
}

/**
 * How the person accepts: a new person chooses a password; someone who has an
 * account accepts while signed in, and their password is left alone.
 */
export type InviteAcceptance = { password: string } | { signedInUserId: string };

const INVITATION_GONE = 'invitation (it may have expired, been withdrawn or been used)';

/**
 * Accepts an invitation with the one-time token from its link, making the
 * person a member. Links from before membership invitations (a person created
 * without a password) still set that person's password.
 */
export async function acceptInvite(deps: ServiceDeps, inviteToken: string, how: InviteAcceptance, request: RequestFacts = SYSTEM_REQUEST): Promise<{ userId: string; organizationId: string | null }> {
  const now = deps.now();
  const digest = sessionDigest(inviteToken);
  // Hashed before anything is looked up: the time taken does not depend on who the link is for.
  const passwordHash = 'password' in how ? await deps.passwords.hash(how.password) : null;
  return deps.store.transaction(async (store) => {
    const invitation = await store.consumeInvitation(digest, now);
    if (!invitation) {
      if (passwordHash === null) throw new NotFoundError(INVITATION_GONE);
      return acceptOldInvite(deps, store, digest, passwordHash, request);
    }
    const userId = passwordHash === null ? await signedInInvitee(store, invitation, (how as { signedInUserId: string }).signedInUserId) : await newInvitee(store, invitation, passwordHash, now);
    if (await store.findMembership(invitation.organizationId, userId)) throw new ConflictError('You are already a member of this organization.');
    // A resource deleted since the invitation is not granted.
    const resourceIds =
      invitation.resourceIds === 'all' ? 'all' : (await store.findResourcesByIds(invitation.organizationId, invitation.resourceIds)).map((resource) => resource.id);
    await store.insertMembership({ organizationId: invitation.organizationId, userId, role: invitation.role, resourceIds, createdAt: now });
    await store.insertAuditEvent({
      ...auditEvent(
        deps,
        null,
        {
          action: 'member.added',
          organizationId: invitation.organizationId,
          target: { type: 'user', id: userId },
          details: { role: invitation.role, invitationId: invitation.id, accepted: passwordHash === null ? 'signed_in' : 'new_password' },
        },
        request,
      ),
      actor: { type: 'user', id: userId },
      authMethod: passwordHash === null ? 'session' : 'password',
    });
    return { userId, organizationId: invitation.organizationId };
  });
}

/** Someone with an account accepts as themselves: the invitation must be for their email. */
async function signedInInvitee(store: Store, invitation: Invitation, signedInUserId: string): Promise<string> {
  const user = await store.findUserById(signedInUserId);
  if (!user || user.email !== invitation.email) throw new ForbiddenError('This invitation is for another email address: sign in as that person to accept it.');
  return user.id;
}

/**
 * A new person sets their password. An email that already has an account must
 * sign in instead: a link must never set the password of an existing person.
 */
async function newInvitee(store: Store, invitation: Invitation, passwordHash: string, now: Date): Promise<string> {
  const found = await store.findUserByEmail(invitation.email);
  if (!found) {
    const user = { id: newId('usr'), email: invitation.email, createdAt: now };
    await store.insertUser(user, passwordHash);
    return user.id;
  }
  // An account that never got a password and belongs nowhere has nobody to take it from.
  if (!found.passwordHash && (await store.listMembershipsOfUser(found.user.id)).length === 0) {
    await store.setUserPassword(found.user.id, passwordHash);
    return found.user.id;
  }
  throw new ConflictError('This email already has a Keyward account: sign in, then accept the invitation without a password.');
}

/** An invite link from before membership invitations: the person exists and is a member; this sets their password. */
async function acceptOldInvite(deps: ServiceDeps, store: Store, digest: string, passwordHash: string, request: RequestFacts): Promise<{ userId: string; organizationId: string | null }> {
  const user = await store.consumeInvite(digest, deps.now());
  if (!user) throw new NotFoundError(INVITATION_GONE);
  await store.setUserPassword(user.id, passwordHash);
  const memberships = await store.listMembershipsOfUser(user.id);
  const organizationId = memberships[0]?.organizationId ?? null;
  await store.insertAuditEvent({
    ...auditEvent(deps, null, { action: 'user.invite_accepted', organizationId, target: { type: 'user', id: user.id } }, request),
    actor: { type: 'user', id: user.id },
  });
  return { userId: user.id, organizationId };
}
