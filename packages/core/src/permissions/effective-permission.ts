import { lowerRole } from '../roles.ts';
import type { Role } from '../roles.ts';
import { expandScopes, grantableScopes } from '../scopes/scope-catalog.ts';
import type { ScopeCatalog } from '../scopes/scope-catalog.ts';

/** What the token's owner may do right now: a member's role and resources, or a client's. */
export interface OwnerAccess {
  role: Role;
  resourceIds: readonly string[] | 'all';
}

/** What was granted to the token when it was created or last updated. */
export interface TokenGrant {
  /** Scope names or wildcard patterns. */
  scopes: readonly string[];
  permission: Role;
  /** Ranked: the first matching resource wins. Empty = everything the owner can access. */
  resourceIds: readonly string[];
}

export interface EffectivePermission {
  /** Sorted concrete scopes. */
  scopes: string[];
  permission: Role;
  /** In the token's ranking. Unlike TokenGrant, an empty list means no resource at all. */
  resourceIds: string[] | 'all';
}

/**
 * A token's rights capped by its owner's current access (SPEC §1), computed on every
 * verification so demoting an owner or removing a resource narrows existing tokens at once.
 * @example effectivePermission(catalog, { scopes: ['scans:*'], permission: 'admin', resourceIds: [] }, { role: 'member', resourceIds: 'all' })
 *   // → { scopes: ['scans:read', 'scans:write'], permission: 'member', resourceIds: 'all' }
 */
export function effectivePermission(
  catalog: ScopeCatalog,
  grant: TokenGrant,
  owner: OwnerAccess,
): EffectivePermission {
  return {
    scopes: effectiveScopes(catalog, grant.scopes, owner.role),
    permission: lowerRole(grant.permission, owner.role),
    resourceIds: effectiveResources(grant.resourceIds, owner.resourceIds),
  };
}

/** The sorted concrete scopes that granted patterns give an owner with `role`. */
export function effectiveScopes(catalog: ScopeCatalog, granted: readonly string[], role: Role): string[] {
  const allowed = new Set(grantableScopes(catalog, role));
  return expandScopes(catalog, granted).filter((scope) => allowed.has(scope));
}

/** Granted resources (ranked) capped by the owner's; an empty grant means all the owner reaches. */
export function effectiveResources(granted: readonly string[], owned: readonly string[] | 'all'): string[] | 'all' {
  if (granted.length === 0) return owned === 'all' ? 'all' : [...new Set(owned)];
  const ranked = [...new Set(granted)];
  if (owned === 'all') return ranked;
  const ownedSet = new Set(owned);
  return ranked.filter((id) => ownedSet.has(id));
}

export function hasScope(effective: EffectivePermission, scope: string): boolean {
  return effective.scopes.includes(scope);
}
