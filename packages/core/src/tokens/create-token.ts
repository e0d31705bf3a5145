import { ConflictError, ForbiddenError, NotFoundError, type FieldError } from '../errors.ts';
import { newId } from '../ids.ts';
import type { NewToken, Store } from '../ports/store.ts';
import { auditEvent, type ServiceDeps } from '../services/context.ts';
import { requireUser } from '../services/access.ts';
import type { Actor, Organization, TokenOwner, TokenRecord } from '../types.ts';
import { hashToken } from './keyring.ts';
import { generateToken, tokenHint, type TokenKind } from './token-format.ts';
import { capExpiry, checkNoLooserThanCaller, inheritRestrictions } from './token-restrictions.ts';
import {
  checkMetadata,
  checkName,
  checkPermission,
  checkQuota,
  checkResources,
  checkScopes,
  defaultScopes,
  expiryFor,
  grantedResources,
  leastPermissionFor,
  normalizeAllowedIps,
  throwIfAny,
  type TokenSettingsInput,
} from './token-settings.ts';

export interface IssuedToken {
  token: TokenRecord;
  /** The plaintext secret: returned to the caller exactly once, never stored. */
  plaintext: string;
}

export type TokenTarget = { kind: 'personal' } | { kind: 'client'; clientId: string };

export interface IssuedSecret {
  plaintext: string;
  digest: string;
  secretVersion: string;
  hint: string;
}

export function issueSecret(deps: ServiceDeps, kind: TokenKind): IssuedSecret {
  const plaintext = generateToken(deps.prefixes[kind]);
  const { digest, version } = hashToken(deps.keyring, plaintext);
  return { plaintext, digest, secretVersion: version, hint: tokenHint(plaintext) };
}

/** What a token chooses at birth; the rest (live, not rotated, its own lineage) follows. */
export type NewTokenFields = Pick<
  NewToken,
  'id' | 'organizationId' | 'kind' | 'owner' | 'name' | 'hint' | 'digest' | 'secretVersion' | 'scopes' | 'permission' | 'resourceIds' | 'expiresAt' | 'allowedIps' | 'rateLimit' | 'metadata' | 'remaining' | 'refill' | 'createdAt'
>;

/** A new token (created or imported): enabled, not revoked, not rotated, the first of its lineage. */
export function newTokenOf(fields: NewTokenFields): NewToken {
  return {
    ...fields,
    resourcesLimited: fields.resourceIds.length > 0,
    disabledAt: null,
    disabledBy: null,
    revokedAt: null,
    revokedReason: null,
    lineageId: fields.id,
    rotatedFrom: null,
    rotatedAt: null,
    graceUntil: null,
  };
}

export async function findOrganizationOf(store: Store, actor: Actor): Promise<Organization> {
  const org = await store.findOrganization(actor.organizationId);
  if (!org) throw new NotFoundError('organization');
  return org;
}

export async function ensureNameIsFree(store: Store, organizationId: string, owner: TokenOwner, name: string, now: Date, exceptId?: string): Promise<void> {
  const existing = await store.findLiveTokenByName(organizationId, owner, name, now);
  if (existing && existing.id !== exceptId) throw new ConflictError(`A live token named "${name}" already exists for this owner.`);
}

/** Creates a personal token for the acting person, or a service token for an API client. */
export async function createToken(deps: ServiceDeps, actor: Actor, input: TokenSettingsInput, target: TokenTarget = { kind: 'personal' }): Promise<IssuedToken> {
  const now = deps.now();
  const owner: TokenOwner =
    target.kind === 'personal' ? { type: 'user', id: requireUser(actor, 'A personal token').id } : { type: 'client', id: target.clientId };
  if (target.kind === 'personal' && actor.token?.kind === 'client') throw new ForbiddenError('A service token cannot create personal tokens.');

  const issued = await deps.store.transaction(async (store) => {
    await store.lockOrganization(actor.organizationId);
    const org = await findOrganizationOf(store, actor);
    if (target.kind === 'client') {
      const client = await store.findClient(actor.organizationId, target.clientId);
      if (!client || client.deletedAt) throw new NotFoundError('client');
    }
    const errors: FieldError[] = [];
    checkName(input.name, errors);
    const scopes = input.scopes ?? defaultScopes(deps.catalog, actor);
    if (input.scopes === undefined && scopes.length === 0) {
      // A token with no scopes is useless and almost certainly not what was meant.
      errors.push({ field: 'scopes', message: `you hold none of the scopes of the default preset "${deps.catalog.defaultPreset}": name the scopes this token needs` });
    }
    checkScopes(deps.catalog, actor, scopes, errors);
    const settings = inheritRestrictions(actor, input);
    const asked = expiryFor(org, input.expiresInDays, now, errors);
    const expiresAt = input.expiresInDays === undefined ? capExpiry(actor, asked) : asked;
    const allowedIps = normalizeAllowedIps(org, settings.allowedIps ?? [], errors);
    const metadata = input.metadata ?? {};
    checkMetadata(metadata, errors);
    checkQuota(settings.remaining, settings.refill, errors);
    throwIfAny(errors);
    checkNoLooserThanCaller(actor, { allowedIps, expiresAt, rateLimit: settings.rateLimit ?? null, remaining: settings.remaining ?? null, refill: settings.refill ?? null });
    // A service token acts for no person, so by default it gets the least level its scopes need, not the creator's.
    const permission = input.permission ?? (target.kind === 'client' ? leastPermissionFor(deps.catalog, scopes) : actor.permission);
    checkPermission(actor, permission);
    const resourceIds = grantedResources(actor, input.resources ?? []);
    await checkResources(store, actor, resourceIds, errors);
    throwIfAny(errors);
    await ensureNameIsFree(store, org.id, owner, input.name, now);

    const secret = issueSecret(deps, target.kind);
    const id = newId('tok');
    const token = newTokenOf({
      id,
      organizationId: org.id,
      kind: target.kind,
      owner,
      name: input.name,
      hint: secret.hint,
      digest: secret.digest,
      secretVersion: secret.secretVersion,
      scopes: [...scopes],
      permission,
      resourceIds: [...resourceIds],
      expiresAt,
      allowedIps,
      rateLimit: settings.rateLimit ?? null,
      metadata,
      remaining: settings.remaining ?? null,
      refill: settings.refill ?? null,
      createdAt: now,
    });
    await store.insertToken(token);
    await store.insertAuditEvent(
      auditEvent(deps, actor, {
        action: 'token.created',
        organizationId: org.id,
        target: { type: 'token', id },
        details: { kind: target.kind, name: input.name, scopes },
      }),
    );
    const stored = await store.findToken(org.id, id);
    if (!stored) throw new Error('token vanished inside its own transaction');
    return { token: stored, plaintext: secret.plaintext };
  });
  return issued;
}
