import { randomBytes } from 'node:crypto';
import { ConflictError, ForbiddenError, NotFoundError, type FieldError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, DEFAULT_PAGE_LIMIT, toPage } from '../pagination.ts';
import type { Store } from '../ports/store.ts';
import { isRoleAtLeast, type Role } from '../roles.ts';
import { canAccessResource } from '../services/access.ts';
import { auditEvent, publishSafely, SYSTEM_REQUEST, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import { normalizeEmail, sessionDigest } from '../auth/password-auth.ts';
import { throwIfAny } from '../tokens/token-settings.ts';
import type { Actor, Member, Page } from '../types.ts';

export interface AddMemberInput {
  email: string;
  role: Role;
  /** Limit the member to these resources; omitted = all. */
  resources?: string[] | undefined;
  password?: string | undefined;
}

export interface AddedMember {
  member: Member;
  /** Present when a new person was created without a password: a one-time link to set one. */
  inviteToken: string | null;
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
function checkCanManage(actor: Actor, member: Member): void {
  if (!isRoleAtLeast(actor.permission, member.role)) throw new ForbiddenError(`You cannot change a member whose role (${member.role}) is above yours.`);
}

async function checkNotLastOwner(store: Store, member: Member): Promise<void> {
  if (member.role === 'owner' && (await store.countOwners(member.organizationId)) <= 1) {
    throw new ConflictError('An organization must keep at least one owner.');
  }
}

export async function listMembers(deps: ServiceDeps, actor: Actor, query: { cursor?: string | undefined; limit?: number | undefined }): Promise<Page<Member>> {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const rows = await deps.store.listMembers(actor.organizationId, { after: decodeCursor(query.cursor), limit: limit + 1 });
  return toPage(rows, limit, (member) => ({ at: member.createdAt, id: member.userId }));
}

export async function getMember(deps: ServiceDeps, actor: Actor, userId: string): Promise<Member> {
  return findMember(deps.store, actor.organizationId, userId);
}

export async function addMember(deps: ServiceDeps, actor: Actor, input: AddMemberInput): Promise<AddedMember> {
  const now = deps.now();
  const email = normalizeEmail(input.email);
  const passwordHash = input.password ? await deps.passwords.hash(input.password) : null;
  const result = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    await checkGrant(store, actor, input.role, input.resources);
    // Omitting resources means all of them, which a limited caller does not hold to give.
    if (input.resources === undefined && actor.resourceIds !== 'all') throw new ForbiddenError('You cannot grant access to all resources: yours are limited.');
    let found = await store.findUserByEmail(email);
    let inviteToken: string | null = null;
    if (!found) {
      const user = { id: newId('usr'), email, createdAt: now };
      await store.insertUser(user, passwordHash);
      found = { user, passwordHash };
    }
    if (await store.findMembership(actor.organizationId, found.user.id)) throw new ConflictError(`${email} is already a member.`);
    // Someone already invited elsewhere keeps that invitation: a link from this
    // organization would let its admin set the password of a person they do not own.
    if (!found.passwordHash && (await store.listMembershipsOfUser(found.user.id)).length === 0) {
      inviteToken = randomBytes(32).toString('base64url');
      await store.setUserInvite(found.user.id, sessionDigest(inviteToken), new Date(now.getTime() + 7 * 86_400_000));
    }
    await store.insertMembership({ organizationId: actor.organizationId, userId: found.user.id, role: input.role, resourceIds: input.resources ?? 'all', createdAt: now });
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'member.added', organizationId: actor.organizationId, target: { type: 'user', id: found.user.id }, details: { role: input.role } }),
    );
    return { member: await findMember(store, actor.organizationId, found.user.id), inviteToken };
  });
  return result;
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

/** Sets the password of an invited person with the one-time token from their invite link. */
export async function acceptInvite(deps: ServiceDeps, inviteToken: string, password: string, request: RequestFacts = SYSTEM_REQUEST): Promise<void> {
  const hash = await deps.passwords.hash(password);
  await deps.store.transaction(async (store) => {
    const user = await store.consumeInvite(sessionDigest(inviteToken), deps.now());
    if (!user) throw new NotFoundError('invitation (it may have expired or been used)');
    await store.setUserPassword(user.id, hash);
    const memberships = await store.listMembershipsOfUser(user.id);
    await store.insertAuditEvent({
      ...auditEvent(deps, null, { action: 'user.invite_accepted', organizationId: memberships[0]?.organizationId ?? null, target: { type: 'user', id: user.id } }, request),
      actor: { type: 'user', id: user.id },
    });
  });
}
