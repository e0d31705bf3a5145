import { NotFoundError } from '../errors.ts';
import type { Store } from '../ports/store.ts';
import { canManageToken } from '../services/access.ts';
import { auditEvent, publishSafely, type RequestFacts, type ServiceDeps } from '../services/context.ts';
import type { Actor, TokenRecord } from '../types.ts';
import { candidateDigests, digestsEqual } from './keyring.ts';
import { SHA256_SECRET_VERSION, legacyPrefixOf, sha256Digest } from './legacy-token.ts';
import { parseToken } from './token-format.ts';

/** Revokes one token. Owners revoke their own; admins anyone's in the organization. */
export async function revokeToken(deps: ServiceDeps, actor: Actor, tokenId: string): Promise<void> {
  const revoked = await deps.store.transaction(async (store) => {
    const token = await store.findToken(actor.organizationId, tokenId);
    // Answer like a missing token, so ids cannot be probed.
    if (!token || !canManageToken(actor, token)) throw new NotFoundError('token');
    const ids = await store.revokeTokens([token.id], deps.now(), 'revoked');
    // Revoking twice is not a second action, so it writes no second event.
    if (ids.length > 0) {
      await store.insertAuditEvent(
        auditEvent(deps, actor, { action: 'token.revoked', organizationId: token.organizationId, target: { type: 'token', id: token.id } }),
      );
    }
    return ids;
  });
  if (revoked.length > 0) await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: revoked });
}

/** DELETE /tokens/current: a token may always revoke itself, whatever its scopes. */
export async function revokeCurrentToken(deps: ServiceDeps, actor: Actor): Promise<void> {
  if (!actor.token) throw new NotFoundError('current token: this request was not made with a token');
  const tokenId = actor.token.id;
  await deps.store.transaction(async (store) => {
    const ids = await store.revokeTokens([tokenId], deps.now(), 'self_revoked');
    if (ids.length > 0) {
      await store.insertAuditEvent(
        auditEvent(deps, actor, { action: 'token.revoked', organizationId: actor.organizationId, target: { type: 'token', id: tokenId }, details: { self: true } }),
      );
    }
  });
  await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: [tokenId] });
}

/**
 * Finds a token by its plaintext: checksum first (or, for an imported key, its
 * configured legacy prefix), then one indexed read, then a constant-time comparison.
 */
export async function findTokenBySecret(deps: ServiceDeps, store: Store, plaintext: string): Promise<{ token: TokenRecord; version: string } | null> {
  const isNative = parseToken(plaintext, deps.prefixes) !== null;
  if (!isNative && legacyPrefixOf(plaintext, deps.legacyPrefixes) === null) return null;
  const candidates = candidateDigests(deps.keyring, plaintext);
  // A legacy key imported as a bare SHA-256 and not used since is stored under that digest.
  if (!isNative) candidates.push({ digest: sha256Digest(plaintext), version: SHA256_SECRET_VERSION });
  const token = await store.findTokenByDigests(candidates.map((candidate) => candidate.digest));
  if (!token) return null;
  const match = candidates.find((candidate) => digestsEqual(candidate.digest, token.digest) && candidate.version === token.secretVersion);
  return match ? { token, version: match.version } : null;
}

/** One string a leak report lists, with where the reporter found it. */
export interface LeakFinding {
  token: string;
  /** Where it was found (a commit, a paste), as the reporter gives it; never the token itself. */
  url?: string | null;
  /** What kind of place that is, in the reporter's words ("commit", "issue_comment"…). */
  source?: string | null;
}

/**
 * Who reported a leak: a caller with `tokens:write` somewhere in this
 * deployment, or a secret-scanning partner the operator configured.
 */
export type LeakReporter = { actor: Actor } | { partner: string; request: RequestFacts };

/**
 * Secret scanning reports: each valid token is revoked and audited in its own
 * organization (`token.leak_reported`, which the outbox sends as `token.leaked`),
 * and every replica hears it on the bus. The answer never says which strings
 * were live tokens.
 */
export async function revokeLeakedTokens(deps: ServiceDeps, from: LeakReporter, findings: ReadonlyArray<string | LeakFinding>): Promise<void> {
  const byToken = new Map<string, LeakFinding>();
  for (const finding of findings) {
    const each = typeof finding === 'string' ? { token: finding } : finding;
    if (!byToken.has(each.token)) byToken.set(each.token, each);
  }
  const changed = new Map<string, string[]>();
  for (const finding of byToken.values()) {
    await deps.store.transaction(async (store) => {
      const found = await findTokenBySecret(deps, store, finding.token);
      if (!found) return;
      const { token } = found;
      const ids = await store.revokeTokens([token.id], deps.now(), 'leaked');
      if (ids.length === 0) return;
      const input = { action: 'token.leak_reported', organizationId: token.organizationId, target: { type: 'token', id: token.id } };
      await store.insertAuditEvent(
        'actor' in from
          ? auditEvent(deps, from.actor, { ...input, details: { reportedFromOrganizationId: from.actor.organizationId } })
          : auditEvent(deps, null, { ...input, details: { partner: from.partner, url: finding.url ?? null, source: finding.source ?? null } }, from.request),
      );
      changed.set(token.organizationId, [...(changed.get(token.organizationId) ?? []), token.id]);
    });
  }
  for (const [organizationId, tokenIds] of changed) await publishSafely(deps, { type: 'tokens.changed', organizationId, tokenIds });
}

/**
 * A rotated-out secret came back: someone may hold a stolen copy. Revoke every
 * token of the lineage and record it. Runs inside the caller's transaction.
 */
export async function revokeLineage(deps: ServiceDeps, store: Store, token: Pick<TokenRecord, 'id' | 'organizationId' | 'lineageId'>, actor: Actor | null, request: RequestFacts, how: string): Promise<string[]> {
  const ids = await store.findUnrevokedTokenIds({ lineageId: token.lineageId });
  const revoked = await store.revokeTokens(ids, deps.now(), 'reuse_detected');
  await store.insertAuditEvent(
    auditEvent(
      deps,
      actor,
      { action: 'token.reuse_detected', organizationId: token.organizationId, target: { type: 'token', id: token.id }, details: { lineageId: token.lineageId, revokedTokenIds: revoked, how } },
      request,
    ),
  );
  return revoked;
}
