import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { newId } from '../ids.ts';
import { canManageToken } from '../services/access.ts';
import { auditEvent, publishSafely, type ServiceDeps } from '../services/context.ts';
import { tokenStatus, type Actor } from '../types.ts';
import { findOrganizationOf, issueSecret, type IssuedToken } from './create-token.ts';
import { revokeLineage } from './revoke-token.ts';
import { capExpiry, checkNoLooserThanCaller } from './token-restrictions.ts';
import { checkCoversToken } from './token-settings.ts';

export const MAX_GRACE_PERIOD_SECONDS = 86_400;
const DAY_MS = 86_400_000;

/**
 * Issues a new secret (new id) that copies the token's settings and links back
 * with rotatedFrom. The old secret stays valid for the grace period, never
 * past its own expiry. Rotating an already rotated-out token is treated as
 * theft: the whole lineage is revoked.
 */
export async function rotateToken(deps: ServiceDeps, actor: Actor, tokenId: string, gracePeriodSeconds = 0): Promise<IssuedToken> {
  // The HTTP schema checks this too, but the domain must hold for every caller (CLI, tests, future routes).
  if (!Number.isInteger(gracePeriodSeconds) || gracePeriodSeconds < 0 || gracePeriodSeconds > MAX_GRACE_PERIOD_SECONDS) {
    throw ValidationError.field('gracePeriodSeconds', `must be a whole number of seconds from 0 to ${MAX_GRACE_PERIOD_SECONDS}`);
  }
  const now = deps.now();
  const outcome = await deps.store.transaction(async (store) => {
    const old = await store.findToken(actor.organizationId, tokenId);
    if (!old || !canManageToken(actor, old)) throw new NotFoundError('token');
    if (old.rotatedAt) {
      const revoked = await revokeLineage(deps, store, old, actor, actor, 'rotate_again');
      return { reuse: revoked, issued: null };
    }
    const status = tokenStatus(old, now);
    if (status === 'revoked' || status === 'expired') throw new ConflictError(`A ${status} token cannot be rotated.`);
    checkCoversToken(deps.catalog, actor, old, 'rotate');
    // The caller receives the new secret: it must be no less restricted than the caller's own token.
    checkNoLooserThanCaller(actor, { allowedIps: old.allowedIps, rateLimit: old.rateLimit, remaining: old.remaining, refill: old.refill });

    const secret = issueSecret(deps, old.kind);
    const id = newId('tok');
    // The new token keeps the original lifetime, counted from now, within today's policy.
    const policy = (await findOrganizationOf(store, actor)).tokenPolicy;
    // The successor must meet today's policy too, not the one the original was made under.
    if (policy.requireIpAllowlist && old.allowedIps.length === 0) {
      throw new ConflictError('This organization now requires an IP allowlist: give the token one (PATCH allowedIps) before rotating it.');
    }
    const maxLifetimeMs = policy.maxLifetimeDays * DAY_MS;
    const lifetimeMs = old.expiresAt ? old.expiresAt.getTime() - old.createdAt.getTime() : policy.allowNoExpiry ? null : maxLifetimeMs;
    // A token rotating itself (or another) cannot renew past its own expiry: the successor is capped there.
    const expiresAt = capExpiry(actor, lifetimeMs === null ? null : new Date(now.getTime() + Math.min(lifetimeMs, maxLifetimeMs)));
    const graceEnd = new Date(now.getTime() + gracePeriodSeconds * 1000);
    const graceUntil = old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
    // The read above does not lock the row: under PostgreSQL's read committed two
    // concurrent rotations both pass it, and each would fork a live successor.
    if (!(await store.markTokenRotated(old.id, now, graceUntil))) {
      const latest = await store.findToken(old.organizationId, old.id);
      if (!latest?.rotatedAt) throw new ConflictError('A revoked token cannot be rotated.');
      return { reuse: await revokeLineage(deps, store, latest, actor, actor, 'rotate_again'), issued: null };
    }
    await store.insertToken({
      ...old,
      id,
      hint: secret.hint,
      digest: secret.digest,
      secretVersion: secret.secretVersion,
      resourceIds: old.resources.map((resource) => resource.id),
      expiresAt,
      rotatedFrom: old.id,
      rotatedAt: null,
      graceUntil: null,
      createdAt: now,
    });
    await store.insertAuditEvent(
      auditEvent(deps, actor, {
        action: 'token.rotated',
        organizationId: old.organizationId,
        target: { type: 'token', id: old.id },
        details: { newTokenId: id, gracePeriodSeconds, graceUntil: graceUntil.toISOString() },
      }),
    );
    const token = await store.findToken(old.organizationId, id);
    if (!token) throw new Error('token vanished inside its own transaction');
    return { reuse: null, issued: { token, plaintext: secret.plaintext } };
  });
  if (outcome.reuse) {
    await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: outcome.reuse });
    throw new ConflictError('This token was already rotated. Rotating it again looks like reuse of a stolen secret, so its whole lineage has been revoked.');
  }
  await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: [tokenId] });
  if (!outcome.issued) throw new Error('rotation produced no token');
  return outcome.issued;
}
