// Domain checks shared by create, update and rotate: what the schema cannot
// know (the catalog, the caller's rights, the organization's policy).
import { ForbiddenError, ValidationError, type FieldError } from '../errors.ts';
import { isValidCidr, normalizeCidr } from '../net/cidr.ts';
import { isRoleAtLeast, type Role } from '../roles.ts';
import { expandScopes, presetScopes, scopesAboveRole, unknownScopes, type ScopeCatalog } from '../scopes/scope-catalog.ts';
import { canAccessResource } from '../services/access.ts';
import type { Store } from '../ports/store.ts';
import type { Actor, Organization, RateLimitSetting, Refill, TokenRecord } from '../types.ts';

export const TOKEN_NAME_PATTERN = /^[A-Za-z0-9 ._-]{1,64}$/;
export const MAX_METADATA_BYTES = 4096;
export const MAX_ALLOWED_IPS = 100;
export const DEFAULT_EXPIRES_IN_DAYS = 30;
const DAY_MS = 86_400_000;

export interface TokenSettingsInput {
  name: string;
  scopes?: string[] | undefined;
  /** Ranked resource ids. */
  resources?: string[] | undefined;
  permission?: Role | undefined;
  expiresInDays?: number | null | undefined;
  allowedIps?: string[] | undefined;
  rateLimit?: RateLimitSetting | null | undefined;
  remaining?: number | null | undefined;
  refill?: Refill | null | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export function checkName(name: string, errors: FieldError[]): void {
  if (!TOKEN_NAME_PATTERN.test(name)) errors.push({ field: 'name', message: 'must be 1-64 letters, digits, spaces, dots, underscores or hyphens' });
}

/**
 * Scopes must exist in the catalog and stay within what the caller holds now,
 * so no token can ever carry more than the person (or token) that made it.
 */
export function checkScopes(catalog: ScopeCatalog, actor: Actor, scopes: readonly string[], errors: FieldError[]): void {
  const unknown = new Set(unknownScopes(catalog, scopes));
  scopes.forEach((scope, index) => {
    if (unknown.has(scope)) errors.push({ field: `scopes/${index}`, message: `${scope} is not in the scope catalog` });
  });
  if (new Set(scopes).size !== scopes.length) errors.push({ field: 'scopes', message: 'must not repeat a scope' });
  if (errors.length > 0) return;
  const beyond = expandScopes(catalog, scopes).filter((scope) => !actor.scopes.includes(scope));
  if (beyond.length === 0) return;
  // The person behind a token could grant these: the token is what is short, so say so.
  if (actor.token && actor.user && scopesAboveRole(catalog, beyond, actor.user.role).length === 0) {
    throw new ForbiddenError(`Your token does not hold ${beyond.join(', ')}; a token can only grant scopes it holds. Use a token that holds ${beyond.length === 1 ? 'it' : 'them'}, or the console.`);
  }
  throw new ForbiddenError(`You cannot grant ${beyond.join(', ')}: it is above your own rights.`);
}

/** The least permission level the scopes need: the highest minRole among them, at least viewer. */
export function leastPermissionFor(catalog: ScopeCatalog, scopes: readonly string[]): Role {
  const minRoles = new Map(catalog.scopes.map((scope) => [scope.name, scope.minRole]));
  return expandScopes(catalog, scopes).reduce<Role>((highest, scope) => {
    const needed = minRoles.get(scope) ?? 'viewer';
    return isRoleAtLeast(needed, highest) ? needed : highest;
  }, 'viewer');
}

export function defaultScopes(catalog: ScopeCatalog, actor: Actor): string[] {
  // The default preset, trimmed to what the caller may grant, so a default never fails.
  const preset = presetScopes(catalog, catalog.defaultPreset) ?? [];
  const granted = new Set(actor.scopes);
  return preset.filter((pattern) => expandScopes(catalog, [pattern]).every((scope) => granted.has(scope)));
}

export function checkPermission(actor: Actor, permission: Role): void {
  if (!isRoleAtLeast(actor.permission, permission)) {
    throw new ForbiddenError(`You cannot grant permission ${permission}: yours is ${actor.permission}.`);
  }
}

/** Resources must exist in the organization and be within the caller's own. */
export async function checkResources(store: Store, actor: Actor, resourceIds: readonly string[], errors: FieldError[]): Promise<void> {
  if (new Set(resourceIds).size !== resourceIds.length) {
    errors.push({ field: 'resources', message: 'must not repeat a resource' });
    return;
  }
  const found = new Set((await store.findResourcesByIds(actor.organizationId, resourceIds)).map((resource) => resource.id));
  // A caller who reaches every resource learns nothing from "unknown", so for
  // them it is a plain validation error.
  if (actor.resourceIds === 'all') {
    resourceIds.forEach((id, index) => {
      if (!found.has(id)) errors.push({ field: `resources/${index}`, message: `${id} is not a resource of this organization` });
    });
    return;
  }
  // For a limited caller, unknown and not-yours read the same, so resource ids cannot be probed.
  const outside = resourceIds.filter((id) => !found.has(id) || !canAccessResource(actor, id));
  if (outside.length > 0) throw new ForbiddenError(`You cannot grant resource ${outside.join(', ')}: it is not one you can access.`);
}

/**
 * The ranked grants to store. An empty list means "everything the owner can
 * reach", which only a caller who reaches everything may hand out; a limited
 * caller (a member limited to some resources, or a token limited narrower than
 * its owner) gets their own list written down instead, so nothing widens.
 */
export function grantedResources(actor: Actor, requested: readonly string[]): string[] {
  if (requested.length > 0 || actor.resourceIds === 'all') return [...requested];
  return [...actor.resourceIds];
}

/**
 * Rotating a token hands out its rights under a new secret, and loosening its
 * allowlist, rate limit or disabled state widens what its holder can do; both
 * need a caller whose own rights cover the token's. Revoking and disabling
 * never do.
 */
export function checkCoversToken(catalog: ScopeCatalog, actor: Actor, token: TokenRecord, what: string): void {
  const scopesBeyond = expandScopes(catalog, token.scopes).filter((scope) => !actor.scopes.includes(scope));
  const resourcesBeyond =
    actor.resourceIds === 'all'
      ? false
      : !token.resourcesLimited || token.resources.some((resource) => !canAccessResource(actor, resource.id));
  if (scopesBeyond.length > 0 || !isRoleAtLeast(actor.permission, token.permission) || resourcesBeyond) {
    throw new ForbiddenError(`You cannot ${what} this token: it holds rights beyond yours. You can still disable or revoke it.`);
  }
}

export function expiryFor(org: Organization, expiresInDays: number | null | undefined, now: Date, errors: FieldError[]): Date | null {
  const policy = org.tokenPolicy;
  if (expiresInDays === null) {
    if (!policy.allowNoExpiry) errors.push({ field: 'expiresInDays', message: 'this organization requires tokens to expire' });
    return null;
  }
  const days = expiresInDays ?? Math.min(DEFAULT_EXPIRES_IN_DAYS, policy.maxLifetimeDays);
  if (!Number.isInteger(days) || days < 1 || days > policy.maxLifetimeDays) {
    errors.push({ field: 'expiresInDays', message: `must be a whole number of days from 1 to ${policy.maxLifetimeDays}` });
    return null;
  }
  return new Date(now.getTime() + days * DAY_MS);
}

export function normalizeAllowedIps(org: Organization, allowedIps: readonly string[], errors: FieldError[]): string[] {
  allowedIps.forEach((cidr, index) => {
    if (!isValidCidr(cidr)) errors.push({ field: `allowedIps/${index}`, message: `${cidr} is not an IPv4 or IPv6 address or CIDR range` });
  });
  if (allowedIps.length > MAX_ALLOWED_IPS) errors.push({ field: 'allowedIps', message: `must list at most ${MAX_ALLOWED_IPS} ranges` });
  if (org.tokenPolicy.requireIpAllowlist && allowedIps.length === 0) {
    errors.push({ field: 'allowedIps', message: 'this organization requires an IP allowlist on every token' });
  }
  return errors.some((error) => error.field.startsWith('allowedIps')) ? [] : [...new Set(allowedIps.map(normalizeCidr))];
}

export function checkMetadata(metadata: Record<string, unknown>, errors: FieldError[]): void {
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch {
    // Nesting deep enough to overflow the stack is far past any sensible metadata.
    errors.push({ field: 'metadata', message: 'is nested too deeply' });
    return;
  }
  if (Buffer.byteLength(json, 'utf8') > MAX_METADATA_BYTES) {
    errors.push({ field: 'metadata', message: `must serialize to at most ${MAX_METADATA_BYTES} bytes of JSON` });
  }
}

export function checkQuota(remaining: number | null | undefined, refill: Refill | null | undefined, errors: FieldError[]): void {
  if (refill && (remaining === null || remaining === undefined)) {
    errors.push({ field: 'refill', message: 'needs remaining to be set' });
  }
}

export function throwIfAny(errors: FieldError[]): void {
  if (errors.length > 0) throw new ValidationError(errors);
}
