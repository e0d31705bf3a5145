import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Store } from '../ports/store.ts';
import { requireUser } from '../services/access.ts';
import { auditEvent, publishSafely, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import { normalizeEmail } from '../auth/password-auth.ts';
import { DEFAULT_TOKEN_POLICY, type Actor, type Organization, type TokenPolicy, type User } from '../types.ts';

export const MAX_TOKEN_LIFETIME_DAYS = 3650;
/** Shorter than this, an audit trail would be gone before anyone looked into an incident. */
export const MIN_RETENTION_DAYS = 30;
export const MAX_POLICY_DAYS = 3650;

async function insertOrganizationWithOwner(deps: ServiceDeps, store: Store, input: { name: string; slug: string }, ownerId: string): Promise<Organization> {
  if (await store.findOrganizationBySlug(input.slug)) throw new ConflictError(`The slug "${input.slug}" is taken.`);
  const org: Organization = { id: newId('org'), name: input.name, slug: input.slug, tokenPolicy: { ...DEFAULT_TOKEN_POLICY }, disabledAt: null, createdAt: deps.now() };
  await store.insertOrganization(org);
  await store.insertMembership({ organizationId: org.id, userId: ownerId, role: 'owner', resourceIds: 'all', createdAt: deps.now() });
  return org;
}

/** A person creates a new organization and becomes its owner. */
export async function createOrganization(deps: ServiceDeps, actor: Actor, input: { name: string; slug: string }): Promise<Organization> {
  const user = requireUser(actor, 'Creating an organization');
  return deps.store.transaction(async (store) => {
    const org = await insertOrganizationWithOwner(deps, store, input, user.id);
    await store.insertAuditEvent(auditEvent(deps, actor, { action: 'organization.created', organizationId: org.id, target: { type: 'organization', id: org.id }, details: { slug: org.slug } }));
    return org;
  });
}

function isWholeNumberWithin(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/** The unused-token and retention settings: each null (off) or a whole number of days in range. */
function checkHygienePolicy(policy: TokenPolicy): void {
  if (policy.revokeUnusedAfterDays !== null && !isWholeNumberWithin(policy.revokeUnusedAfterDays, 1, MAX_POLICY_DAYS)) {
    throw ValidationError.field('tokenPolicy/revokeUnusedAfterDays', `must be null (off) or from 1 to ${MAX_POLICY_DAYS}`);
  }
  if (policy.retentionDays !== null && !isWholeNumberWithin(policy.retentionDays, MIN_RETENTION_DAYS, MAX_POLICY_DAYS)) {
    throw ValidationError.field('tokenPolicy/retentionDays', `must be null (keep forever) or from ${MIN_RETENTION_DAYS} to ${MAX_POLICY_DAYS}`);
  }
}

export async function getCurrentOrganization(deps: ServiceDeps, actor: Actor): Promise<Organization> {
  const org = await deps.store.findOrganization(actor.organizationId);
  if (!org) throw new NotFoundError('organization');
  return org;
}

export async function updateCurrentOrganization(deps: ServiceDeps, actor: Actor, changes: { name?: string | undefined; tokenPolicy?: Partial<TokenPolicy> | undefined }): Promise<Organization> {
  const org = await deps.store.transaction(async (store) => {
    const current = await store.findOrganization(actor.organizationId);
    if (!current) throw new NotFoundError('organization');
    const tokenPolicy = changes.tokenPolicy ? { ...current.tokenPolicy, ...changes.tokenPolicy } : undefined;
    if (tokenPolicy && (tokenPolicy.maxLifetimeDays < 1 || tokenPolicy.maxLifetimeDays > MAX_TOKEN_LIFETIME_DAYS)) {
      throw ValidationError.field('tokenPolicy/maxLifetimeDays', `must be from 1 to ${MAX_TOKEN_LIFETIME_DAYS}`);
    }
    if (tokenPolicy) checkHygienePolicy(tokenPolicy);
    await store.updateOrganization(current.id, { name: changes.name, tokenPolicy });
    await store.insertAuditEvent(
      auditEvent(deps, actor, { action: 'organization.updated', organizationId: current.id, target: { type: 'organization', id: current.id }, details: { name: changes.name, tokenPolicy: changes.tokenPolicy } }),
    );
    const updated = await store.findOrganization(current.id);
    if (!updated) throw new NotFoundError('organization');
    return updated;
  });
  await publishSafely(deps, { type: 'organization.changed', organizationId: org.id });
  return org;
}

export interface BootstrapInput {
  email: string;
  password: string;
  organizationName: string;
  organizationSlug: string;
}

/**
 * First run: the first person and organization, only while no user exists
 * (the check and the inserts share one transaction).
 */
/** `request` is the setup page's request; the CLI and the environment bootstrap leave it out (system). */
export async function bootstrapOwner(deps: ServiceDeps, input: BootstrapInput, request?: RequestFacts): Promise<{ user: User; organization: Organization }> {
  if (!/^[^\s@]{1,64}@[^\s@]{1,253}\.[^\s@]{1,63}$/.test(input.email.trim())) throw ValidationError.field('email', 'is not an email address');
  const passwordHash = await deps.passwords.hash(input.password);
  return deps.store.transaction(async (store) => {
    if ((await store.countUsers()) > 0) throw new ConflictError('Keyward is already set up: an owner exists.');
    const user: User = { id: newId('usr'), email: normalizeEmail(input.email), createdAt: deps.now() };
    await store.insertUser(user, passwordHash);
    const organization = await insertOrganizationWithOwner(deps, store, { name: input.organizationName, slug: input.organizationSlug }, user.id);
    const event = auditEvent(deps, null, { action: 'organization.created', organizationId: organization.id, target: { type: 'organization', id: organization.id }, details: { slug: organization.slug, bootstrap: true } }, request);
    // Through the setup page a person acted, with the one-time setup token.
    await store.insertAuditEvent(request ? { ...event, actor: { type: 'user', id: user.id }, authMethod: 'password' } : event);
    return { user, organization };
  });
}
