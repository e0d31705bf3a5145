import { UnauthenticatedError } from '../errors.ts';
import { isIpAllowed } from '../net/cidr.ts';
import { effectivePermission, type OwnerAccess } from '../permissions/effective-permission.ts';
import type { Store } from '../ports/store.ts';
import { publishSafely, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import { isRotatedOut, tokenStatus, type Actor, type TokenRecord } from '../types.ts';
import type { VerifiableToken } from '../verification/verify-token.ts';

/** What a token's actor is built from: a stored row, or a cached token (whose expiry is a number). */
export type ActorToken = Omit<VerifiableToken, 'expiresAtMs'> & Pick<TokenRecord, 'expiresAt'>;
import { hashToken } from './keyring.ts';
import { findTokenBySecret, revokeLineage } from './revoke-token.ts';

const TOUCH_INTERVAL_MS = 60_000;

/** Why a token does not authenticate; the message is safe to show its holder. */
const REFUSALS = {
  malformed: 'The token is malformed.',
  unknown: 'The token is not valid.',
  revoked: 'The token has been revoked.',
  expired: 'The token has expired.',
  disabled: 'The token is disabled.',
  ip: 'The token may not be used from this address.',
} as const;

function refuse(reason: keyof typeof REFUSALS): never {
  throw new UnauthenticatedError(REFUSALS[reason], 'invalid');
}

/**
 * The owner's current access, read fresh on every call: removing a member,
 * deleting a client or disabling an organization takes effect at once.
 */
export async function currentOwnerAccess(store: Store, token: TokenRecord): Promise<OwnerAccess | null> {
  const org = await store.findOrganization(token.organizationId);
  if (!org || org.disabledAt) return null;
  if (token.owner.type === 'user') {
    const membership = await store.findMembership(token.organizationId, token.owner.id);
    return membership ? { role: membership.role, resourceIds: membership.resourceIds } : null;
  }
  const client = await store.findClient(token.organizationId, token.owner.id);
  // Service tokens were capped by an admin's rights at creation; the client itself has no role.
  return client && !client.deletedAt ? { role: 'owner', resourceIds: 'all' } : null;
}

/** Effective rights of a token for its owner's access now (SPEC §1). */
export function actorForToken(deps: ServiceDeps, token: ActorToken, owner: OwnerAccess, request: RequestFacts): Actor {
  const effective = effectivePermission(deps.catalog, { scopes: token.scopes, permission: token.permission, resourceIds: token.resources.map((r) => r.id) }, owner);
  // A token whose granted resources were all deleted reaches none, not all.
  const resourceIds = token.resourcesLimited && token.resources.length === 0 ? [] : effective.resourceIds;
  return {
    organizationId: token.organizationId,
    authMethod: token.kind === 'personal' ? 'personal_token' : 'client_token',
    user: token.owner.type === 'user' ? { id: token.owner.id, role: owner.role, resourceIds: owner.resourceIds === 'all' ? 'all' : [...owner.resourceIds] } : null,
    token: {
      id: token.id,
      kind: token.kind,
      clientId: token.owner.type === 'client' ? token.owner.id : null,
      allowedIps: [...token.allowedIps],
      expiresAt: token.expiresAt,
      rateLimit: token.rateLimit,
      remaining: token.remaining,
      refill: token.refill,
    },
    scopes: effective.scopes,
    permission: effective.permission,
    resourceIds,
    ...request,
  };
}

/**
 * Authenticates a bearer token for the management API: checksum before any
 * read, one indexed lookup, constant-time digest comparison, then the token's
 * state and its owner's current rights.
 */
export async function authenticateToken(deps: ServiceDeps, plaintext: string, request: RequestFacts): Promise<Actor> {
  const now = deps.now();
  const found = await findTokenBySecret(deps, deps.store, plaintext);
  if (!found) refuse('unknown');
  const { token, version } = found;

  if (isRotatedOut(token, now) && !token.revokedAt) {
    const revoked = await deps.store.transaction((store) => revokeLineage(deps, store, token, null, request, 'rotated_out_secret_presented'));
    await publishSafely(deps, { type: 'tokens.changed', organizationId: token.organizationId, tokenIds: revoked });
    refuse('revoked');
  }
  const status = tokenStatus(token, now);
  if (status !== 'active') refuse(status);
  if (token.allowedIps.length > 0 && (!request.ip || !isIpAllowed(request.ip, token.allowedIps))) refuse('ip');

  const owner = await currentOwnerAccess(deps.store, token);
  if (!owner) refuse('unknown');

  if (version !== deps.keyring.current.version) {
    // Lazy re-hash: the next lookup finds it under the current secret, so old versions can be dropped.
    const rehashed = hashToken(deps.keyring, plaintext);
    await deps.store.rehashToken(token.id, rehashed.digest, rehashed.version);
  }
  if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS) {
    // Bookkeeping only: a failed write (disk full, database locked) must not refuse a valid token.
    await deps.store.touchToken(token.id, now, request.ip).catch((error: unknown) => deps.reportError?.(error, 'could not record when the token was last used'));
  }
  return actorForToken(deps, token, owner, request);
}

export { REFUSALS as TOKEN_REFUSALS };
