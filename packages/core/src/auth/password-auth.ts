import { createHash, createHmac, randomBytes } from 'node:crypto';
import { UnauthenticatedError } from '../errors.ts';
import { digestsEqual } from '../tokens/keyring.ts';
import { grantableScopes } from '../scopes/scope-catalog.ts';
import { auditEvent, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import type { PasswordHasher } from '../ports/store.ts';
import type { Actor, Membership, Organization, Session, User } from '../types.ts';

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const BAD_CREDENTIALS = 'The email or password is wrong.';

// One dummy hash per hasher (a test's fake hasher must not hand its hash to the real one).
const dummyHashes = new WeakMap<PasswordHasher, Promise<string>>();

/**
 * The hash an unknown email is verified against. A failed hash is forgotten,
 * so one bad moment does not turn every later unknown-email sign-in into a 500.
 */
function dummyHashFor(passwords: PasswordHasher): Promise<string> {
  let hash = dummyHashes.get(passwords);
  if (!hash) {
    hash = passwords.hash(randomBytes(16).toString('hex'));
    dummyHashes.set(passwords, hash);
    hash.catch(() => {
      if (dummyHashes.get(passwords) === hash) dummyHashes.delete(passwords);
    });
  }
  return hash;
}

/**
 * Checks an email and password. An unknown email still costs one argon2
 * verification against a dummy hash, so timing does not reveal accounts.
 */
export async function checkPassword(deps: ServiceDeps, email: string, password: string): Promise<User | null> {
  const found = await deps.store.findUserByEmail(normalizeEmail(email));
  if (!found || !found.passwordHash) {
    await deps.passwords.verify(await dummyHashFor(deps.passwords), password);
    return null;
  }
  return (await deps.passwords.verify(found.passwordHash, password)) ? found.user : null;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Picks the organization a person acts in: the one named (id or slug), or their first. */
export async function resolveMembership(deps: ServiceDeps, userId: string, organization?: string | null): Promise<(Membership & { organization: Organization }) | null> {
  const memberships = await deps.store.listMembershipsOfUser(userId);
  const usable = memberships.filter((m) => !m.organization.disabledAt);
  if (!organization) return usable[0] ?? null;
  return usable.find((m) => m.organization.id === organization || m.organization.slug === organization) ?? null;
}

export function actorForMember(deps: ServiceDeps, membership: Membership, authMethod: 'session' | 'password', request: RequestFacts): Actor {
  return {
    organizationId: membership.organizationId,
    authMethod,
    user: { id: membership.userId, role: membership.role, resourceIds: membership.resourceIds },
    token: null,
    scopes: grantableScopes(deps.catalog, membership.role),
    permission: membership.role,
    resourceIds: membership.resourceIds,
    ...request,
  };
}

/** Records a failed sign-in, in the person's default organization when they exist. */
export async function auditFailedLogin(deps: ServiceDeps, email: string, how: 'session' | 'password', request: RequestFacts): Promise<void> {
  const found = await deps.store.findUserByEmail(normalizeEmail(email));
  const memberships = found ? await deps.store.listMembershipsOfUser(found.user.id) : [];
  await deps.store.insertAuditEvent({
    ...auditEvent(deps, null, { action: 'auth.login_failed', organizationId: memberships[0]?.organizationId ?? null, target: found ? { type: 'user', id: found.user.id } : null, details: { method: how } }, request),
    actor: { type: 'user', id: found?.user.id ?? null },
    authMethod: how,
  });
}

/**
 * The headless password flow: email and password (and optionally which
 * organization) stand in for a session for one request.
 */
export async function authenticatePassword(deps: ServiceDeps, email: string, password: string, organization: string | undefined, request: RequestFacts): Promise<Actor> {
  const user = await checkPassword(deps, email, password);
  const membership = user ? await resolveMembership(deps, user.id, organization) : null;
  if (!user || !membership) {
    await auditFailedLogin(deps, email, 'password', request);
    throw new UnauthenticatedError(BAD_CREDENTIALS, 'credentials');
  }
  return actorForMember(deps, membership, 'password', request);
}

export interface StartedSession {
  /** Cookie value (secret); only its digest is stored. */
  sessionSecret: string;
  /** Sent back in X-CSRF-Token on every state-changing request. */
  csrfToken: string;
  session: Session;
  user: User;
  memberships: Array<Membership & { organization: Organization }>;
}

export function sessionDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export async function login(deps: ServiceDeps, email: string, password: string, request: RequestFacts): Promise<StartedSession> {
  const user = await checkPassword(deps, email, password);
  if (!user) {
    await auditFailedLogin(deps, email, 'session', request);
    throw new UnauthenticatedError(BAD_CREDENTIALS, 'credentials');
  }
  const now = deps.now();
  const sessionSecret = randomBytes(32).toString('base64url');
  const csrfToken = csrfTokenFor(sessionSecret);
  const session: Session = { id: sessionDigest(sessionSecret), userId: user.id, csrfDigest: sessionDigest(csrfToken), createdAt: now, expiresAt: new Date(now.getTime() + SESSION_TTL_MS) };
  const memberships = await deps.store.listMembershipsOfUser(user.id);
  await deps.store.transaction(async (store) => {
    // Ended sessions go at the next sign-in, so the table holds live ones only.
    await store.deleteExpiredSessions(now);
    await store.insertSession(session);
    await store.insertAuditEvent({
      ...auditEvent(deps, null, { action: 'auth.login', organizationId: memberships[0]?.organizationId ?? null, target: { type: 'user', id: user.id } }, request),
      actor: { type: 'user', id: user.id },
      authMethod: 'session',
    });
  });
  return { sessionSecret, csrfToken, session, user, memberships };
}

/** The live session behind a cookie, or null. */
export async function findLiveSession(deps: ServiceDeps, sessionSecret: string): Promise<Session | null> {
  const session = await deps.store.findSession(sessionDigest(sessionSecret));
  if (!session || session.expiresAt <= deps.now()) return null;
  return session;
}

/** Derived from the session secret, so the console can fetch it again after a reload. */
export function csrfTokenFor(sessionSecret: string): string {
  return createHmac('sha256', sessionSecret).update('keyward-csrf').digest('base64url');
}

export function isCsrfTokenValid(session: Session, csrfToken: string | undefined): boolean {
  return typeof csrfToken === 'string' && digestsEqual(sessionDigest(csrfToken), session.csrfDigest);
}

export async function logout(deps: ServiceDeps, actor: Actor, session: Session): Promise<void> {
  await deps.store.transaction(async (store) => {
    await store.deleteSession(session.id);
    await store.insertAuditEvent(auditEvent(deps, actor, { action: 'auth.logout', organizationId: actor.organizationId, target: { type: 'user', id: session.userId } }));
  });
}

