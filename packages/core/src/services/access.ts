// Authorization decisions about an actor, pure so every route and the SDK
// reach the same answer.
import { ForbiddenError, InsufficientScopeError } from '../errors.ts';
import { isRoleAtLeast, type Role } from '../roles.ts';
import type { Actor, TokenRecord } from '../types.ts';

/**
 * Acting on other people's tokens needs the admin level as well as the scope:
 * a token granted `tokens:manage` but only `viewer` permission must not revoke
 * the organization's tokens.
 */
const MANAGER_ROLE: Role = 'admin';

/** Passes when the actor holds any of the scopes; the error names the first. */
export function requireScope(actor: Pick<Actor, 'scopes'>, ...scopes: string[]): void {
  if (!scopes.some((scope) => actor.scopes.includes(scope))) throw new InsufficientScopeError(scopes[0] ?? 'unknown');
}

export function hasScope(actor: Actor, scope: string): boolean {
  return actor.scopes.includes(scope);
}

/** Passes when the actor's effective permission level is at least `minimum`. */
export function requirePermission(actor: Actor, minimum: Role): void {
  if (!isRoleAtLeast(actor.permission, minimum)) {
    throw new ForbiddenError(`This action needs at least the ${minimum} permission level; yours is ${actor.permission}.`);
  }
}

/** A management scope counts only with the permission level to use it. */
export function hasManagerScope(actor: Actor, scope: 'tokens:manage' | 'clients:manage'): boolean {
  return hasScope(actor, scope) && isRoleAtLeast(actor.permission, MANAGER_ROLE);
}

/** The person behind the actor; personal tokens and some routes need one. */
export function requireUser(actor: Actor, what = 'This action'): NonNullable<Actor['user']> {
  if (!actor.user) throw new ForbiddenError(`${what} needs a person: use a console session, a personal token or the password flow.`);
  return actor.user;
}

export function isOwnToken(actor: Actor, token: TokenRecord): boolean {
  if (token.owner.type === 'user') return actor.user?.id === token.owner.id;
  return actor.token?.clientId === token.owner.id;
}

export function canViewToken(actor: Actor, token: TokenRecord): boolean {
  if (token.organizationId !== actor.organizationId) return false;
  if (hasManagerScope(actor, 'tokens:manage')) return true;
  if (token.kind === 'client' && hasManagerScope(actor, 'clients:manage')) return true;
  return isOwnToken(actor, token) && (hasScope(actor, 'tokens:read') || hasScope(actor, 'tokens:write'));
}

export function canManageToken(actor: Actor, token: TokenRecord): boolean {
  if (token.organizationId !== actor.organizationId) return false;
  if (hasManagerScope(actor, 'tokens:manage')) return true;
  if (token.kind === 'client' && hasManagerScope(actor, 'clients:manage')) return true;
  return isOwnToken(actor, token) && hasScope(actor, 'tokens:write');
}

/** Resources the actor may hand out: a token can never reach past its creator. */
export function canAccessResource(actor: Actor, resourceId: string): boolean {
  return actor.resourceIds === 'all' || actor.resourceIds.includes(resourceId);
}
