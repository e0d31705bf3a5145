import { ConflictError, ForbiddenError, NotFoundError, type FieldError } from '../errors.ts';
import type { Store, TokenChanges } from '../ports/store.ts';
import { scopesAboveRole } from '../scopes/scope-catalog.ts';
import { canManageToken } from '../services/access.ts';
import { auditActorOf, auditEvent, publishSafely, type ServiceDeps } from '../services/context.ts';
import { isRoleAtLeast, roleRank } from '../roles.ts';
import { tokenStatus, type Actor, type DisabledBy, type RateLimitSetting, type Refill, type TokenRecord } from '../types.ts';
import { ensureNameIsFree, findOrganizationOf } from './create-token.ts';
import { checkNoLooserThanCaller } from './token-restrictions.ts';
import {
  checkMetadata,
  checkName,
  checkQuota,
  checkResources,
  checkCoversToken,
  checkScopes,
  grantedResources,
  normalizeAllowedIps,
  throwIfAny,
} from './token-settings.ts';

export interface TokenPatch {
  name?: string | undefined;
  scopes?: string[] | undefined;
  resources?: string[] | undefined;
  enabled?: boolean | undefined;
  allowedIps?: string[] | undefined;
  rateLimit?: RateLimitSetting | null | undefined;
  metadata?: Record<string, unknown> | undefined;
  /** Quota credits left (null removes the quota); the value holds for the current refill period. */
  remaining?: number | null | undefined;
  refill?: Refill | null | undefined;
}

/**
 * An admin editing someone else's personal token may not store rights its
 * owner's role cannot use: they would stay dormant, and switch on by
 * themselves if the owner were promoted later.
 */
async function checkWithinOwner(deps: ServiceDeps, store: Store, token: TokenRecord, changes: TokenChanges): Promise<void> {
  if (token.owner.type !== 'user' || (changes.scopes === undefined && changes.resourceIds === undefined)) return;
  const membership = await store.findMembership(token.organizationId, token.owner.id);
  if (!membership) throw new NotFoundError('token');
  const aboveOwner = changes.scopes ? scopesAboveRole(deps.catalog, changes.scopes, membership.role) : [];
  if (aboveOwner.length > 0) throw new ForbiddenError(`The token's owner is ${membership.role}, which cannot hold ${aboveOwner.join(', ')}.`);
  const ownerResources = membership.resourceIds;
  if (changes.resourceIds && ownerResources !== 'all' && changes.resourceIds.some((id) => !ownerResources.includes(id))) {
    throw new ForbiddenError("The token's owner cannot access every resource in that list.");
  }
}

function disablerOf(actor: Actor): DisabledBy {
  const who = auditActorOf(actor);
  return { type: who.type, id: who.id, permission: actor.permission };
}

/**
 * A disable holds against anyone with less: an owner cannot switch back on,
 * from another of their tokens, a token an admin disabled.
 */
function checkMayReEnable(actor: Actor, token: TokenRecord): void {
  const by = token.disabledBy;
  if (by && !isRoleAtLeast(actor.permission, by.permission)) {
    throw new ForbiddenError(`This token was disabled by someone at the ${by.permission} level; re-enabling it needs at least ${by.permission} (yours is ${actor.permission}).`);
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** More credits, no quota at all, or a more generous refill widen what the token's holder may do. */
function loosensQuota(token: TokenRecord, changes: TokenChanges): boolean {
  if (changes.remaining !== undefined && (changes.remaining === null || token.remaining === null || changes.remaining > token.remaining)) return true;
  if (changes.refill !== undefined && changes.refill !== null && (!token.refill || changes.refill.amount > token.refill.amount || changes.refill.interval !== token.refill.interval)) return true;
  return false;
}

/** A field sent with its current value is not a change: no audit event, no invalidation. */
function dropUnchanged(changes: TokenChanges, token: TokenRecord): void {
  if (changes.scopes && same(changes.scopes, token.scopes)) delete changes.scopes;
  if (changes.allowedIps && same(changes.allowedIps, token.allowedIps)) delete changes.allowedIps;
  if (changes.metadata && same(changes.metadata, token.metadata)) delete changes.metadata;
  if (changes.rateLimit !== undefined && same(changes.rateLimit, token.rateLimit)) delete changes.rateLimit;
  if (changes.refill !== undefined && same(changes.refill, token.refill)) delete changes.refill;
  if (changes.remaining !== undefined && changes.remaining === token.remaining) {
    delete changes.remaining;
    delete changes.quotaPeriodStart;
  }
  const currentResources = token.resources.map((resource) => resource.id);
  if (changes.resourceIds && same(changes.resourceIds, currentResources) && changes.resourcesLimited === token.resourcesLimited) {
    delete changes.resourceIds;
    delete changes.resourcesLimited;
  }
}

/** Same checks as creation: a change can never lift a token above the caller's own rights. */
export async function updateToken(deps: ServiceDeps, actor: Actor, tokenId: string, patch: TokenPatch): Promise<TokenRecord> {
  const now = deps.now();
  const updated = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    const token = await store.findToken(actor.organizationId, tokenId);
    if (!token || !canManageToken(actor, token)) throw new NotFoundError('token');
    const status = tokenStatus(token, now);
    if (status === 'revoked' || status === 'expired') throw new ConflictError(`A${status === 'expired' ? 'n' : ''} ${status} token cannot be changed.`);

    const errors: FieldError[] = [];
    const changes: TokenChanges = {};
    if (patch.name !== undefined && patch.name !== token.name) {
      checkName(patch.name, errors);
      changes.name = patch.name;
    }
    if (patch.scopes !== undefined) {
      checkScopes(deps.catalog, actor, patch.scopes, errors);
      changes.scopes = patch.scopes;
    }
    if (patch.allowedIps !== undefined) {
      changes.allowedIps = normalizeAllowedIps(await findOrganizationOf(store, actor), patch.allowedIps, errors);
    }
    if (patch.metadata !== undefined) {
      checkMetadata(patch.metadata, errors);
      changes.metadata = patch.metadata;
    }
    throwIfAny(errors);
    if (patch.resources !== undefined) {
      const resourceIds = grantedResources(actor, patch.resources);
      await checkResources(store, actor, resourceIds, errors);
      throwIfAny(errors);
      changes.resourceIds = resourceIds;
      changes.resourcesLimited = resourceIds.length > 0;
    }
    if (patch.enabled === true && token.disabledAt !== null) {
      checkMayReEnable(actor, token);
      changes.disabledAt = null;
      changes.disabledBy = null;
    } else if (patch.enabled === false) {
      if (token.disabledAt === null) changes.disabledAt = now;
      // Disabling an already disabled token with more rights makes the disable stick at that level.
      if (token.disabledAt === null || !token.disabledBy || roleRank(actor.permission) > roleRank(token.disabledBy.permission)) changes.disabledBy = disablerOf(actor);
    }
    if (patch.rateLimit !== undefined) changes.rateLimit = patch.rateLimit;
    if (patch.remaining !== undefined || patch.refill !== undefined) {
      const remaining = patch.remaining === undefined ? token.remaining : patch.remaining;
      const refill = patch.refill === undefined ? (remaining === null ? null : token.refill) : patch.refill;
      checkQuota(remaining, refill, errors);
      throwIfAny(errors);
      if (patch.remaining !== undefined) {
        changes.remaining = patch.remaining;
        // The value set now is this period's: the next refill comes when the period turns.
        changes.quotaPeriodStart = now;
      }
      if (refill !== token.refill) changes.refill = refill;
    }
    await checkWithinOwner(deps, store, token, changes);
    if (changes.name !== undefined) await ensureNameIsFree(store, token.organizationId, token.owner, changes.name, now, token.id);
    dropUnchanged(changes, token);
    if (changes.allowedIps !== undefined || changes.rateLimit !== undefined || changes.disabledAt === null || loosensQuota(token, changes)) {
      checkCoversToken(deps.catalog, actor, token, 'loosen the IP allowlist, rate limit, quota or disabled state of');
    }
    // A token cannot loosen its own restrictions, nor set another's looser than its own.
    checkNoLooserThanCaller(actor, { allowedIps: changes.allowedIps, rateLimit: changes.rateLimit, remaining: changes.remaining, refill: changes.refill });

    const changed = Object.keys(changes);
    if (changed.length > 0) {
      await store.updateToken(token.id, changes);
      await store.insertAuditEvent(
        auditEvent(deps, actor, {
          action: 'token.updated',
          organizationId: token.organizationId,
          target: { type: 'token', id: token.id },
          details: {
            changed: [...new Set(changed.map((field) => (field === 'resourceIds' || field === 'resourcesLimited' ? 'resources' : field === 'disabledAt' || field === 'disabledBy' ? 'enabled' : field === 'quotaPeriodStart' ? 'remaining' : field)))],
            ...(changes.disabledBy ? { disabledBy: changes.disabledBy } : {}),
          },
        }),
      );
    }
    const stored = await store.findToken(token.organizationId, token.id);
    if (!stored) throw new NotFoundError('token');
    return { token: stored, changed: changed.length > 0 };
  });
  if (updated.changed) await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: [tokenId] });
  return updated.token;
}
