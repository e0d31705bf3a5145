// Import (issue 13): an organization admin brings existing API keys, as
// plaintext or as the SHA-256 hash other key services store, so a team moves
// to Keyward without breaking its users' keys. Each record is judged alone
// (created, skipped because its externalId is already here, or failed with
// field errors) inside one transaction for the batch, and every check of
// normal creation applies: the importer and the owner must both be able to
// grant what the key carries, so an import can never widen anyone's rights.
import { actorForMember, normalizeEmail } from '../auth/password-auth.ts';
import { KeywardError, ValidationError, type FieldError } from '../errors.ts';
import { newId } from '../ids.ts';
import type { ImportedKey, Store } from '../ports/store.ts';
import { isRoleAtLeast, lowerRole, type Role } from '../roles.ts';
import { expandScopes, unknownScopes } from '../scopes/scope-catalog.ts';
import { canAccessResource, hasManagerScope, requirePermission, requireScope } from '../services/access.ts';
import { SYSTEM_REQUEST, auditEvent, publishSafely, type ServiceDeps } from '../services/context.ts';
import type { Actor, Membership, Organization, TokenOwner } from '../types.ts';
import { findOrganizationOf, newTokenOf } from './create-token.ts';
import { hashToken } from './keyring.ts';
import { SHA256_SECRET_VERSION, legacyPrefixOf, legacyTokenHint, lookupDigests, type TokenHashKind } from './legacy-token.ts';
import { parseToken, tokenHint, type TokenKind } from './token-format.ts';
import { checkNoLooserThanCaller, inheritRestrictions, type RestrictionInput } from './token-restrictions.ts';
import { checkMetadata, checkName, checkPermission, checkResources, checkScopes, leastPermissionFor, normalizeAllowedIps } from './token-settings.ts';

/** Most records one import request may carry; the CLI sends larger files in batches. */
export const MAX_IMPORT_BATCH = 1000;
const DAY_MS = 86_400_000;

export type ImportOwner = { email: string } | { userId: string } | { clientId: string };

/** One key to import: exactly one of `plaintext` and `sha256`. */
export interface ImportRecord {
  /** The key's stable id in the old system; a record whose externalId is already imported is skipped. */
  externalId: string;
  plaintext?: string | undefined;
  /** Lowercase or uppercase hex SHA-256 of the whole key. */
  sha256?: string | undefined;
  /** With `sha256`: the configured legacy prefix the keys carry (for lookups and the display hint). */
  prefix?: string | undefined;
  owner: ImportOwner;
  name: string;
  scopes: string[];
  /** Ranked resource ids; none = everything the owner (and the importer) can reach. */
  resources?: string[] | undefined;
  permission?: Role | undefined;
  /** Absent or null = never expires, where the organization allows it. */
  expiresAt?: Date | null | undefined;
  allowedIps?: string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export type ImportResult =
  | { index: number; externalId: string; status: 'created'; tokenId: string | null }
  | { index: number; externalId: string; status: 'skipped'; tokenId: string }
  | { index: number; externalId: string; status: 'failed'; errors: FieldError[] };

export interface ImportOptions {
  /** Judge every record, then roll back: nothing is written, no event is sent. */
  dryRun?: boolean;
}

export interface ImportSummary {
  dryRun: boolean;
  results: ImportResult[];
}

/** How a record's key will be stored and found. */
interface ImportedSecret {
  digest: string;
  secretVersion: string;
  hashKind: TokenHashKind;
  hint: string;
  /** Every digest this key may already be stored under, to refuse a second copy. */
  lookup: string[];
  /** The kind a native Keyward token declares by its prefix. */
  nativeKind: TokenKind | null;
}

/** Carries the results of a dry run out of its transaction, which it rolls back. */
class DryRunRollback extends Error {
  readonly results: ImportResult[];
  constructor(results: ImportResult[]) {
    super('dry run');
    this.results = results;
  }
}

/** Imports a batch of existing keys; needs tokens:manage at the admin level (clients:manage too for service tokens). */
export async function importTokens(deps: ServiceDeps, actor: Actor, records: readonly ImportRecord[], options: ImportOptions = {}): Promise<ImportSummary> {
  requireScope(actor, 'tokens:manage');
  requirePermission(actor, 'admin');
  if (records.length > MAX_IMPORT_BATCH) throw ValidationError.field('records', `must hold at most ${MAX_IMPORT_BATCH} records`);
  const dryRun = options.dryRun === true;
  let results: ImportResult[];
  try {
    results = await deps.store.transaction(async (store) => {
      await store.lockOrganization(actor.organizationId);
      const org = await findOrganizationOf(store, actor);
      const judged: ImportResult[] = [];
      for (const [index, record] of records.entries()) judged.push(await importOne(deps, store, actor, org, record, index));
      if (dryRun) throw new DryRunRollback(judged);
      return judged;
    });
  } catch (error) {
    if (error instanceof DryRunRollback) return { dryRun, results: error.results.map((result) => (result.status === 'created' ? { ...result, tokenId: null } : result)) };
    throw error;
  }
  const created = results.flatMap((result) => (result.status === 'created' && result.tokenId ? [result.tokenId] : []));
  // A key its holders kept using during the move may sit in a negative cache: drop those everywhere.
  if (created.length > 0) await publishSafely(deps, { type: 'tokens.changed', organizationId: actor.organizationId, tokenIds: created });
  return { dryRun, results };
}

async function importOne(deps: ServiceDeps, store: Store, actor: Actor, org: Organization, record: ImportRecord, index: number): Promise<ImportResult> {
  const { externalId } = record;
  const existing = await store.findTokenIdByExternalId(org.id, externalId);
  // Checked first, so a re-run skips what it imported before whatever changed since (a name now taken, a policy).
  if (existing) return { index, externalId, status: 'skipped', tokenId: existing };

  const errors: FieldError[] = [];
  const secret = importedSecret(deps, record, errors);
  if (secret && (await store.findTokenByDigests(secret.lookup))) {
    // Never which token or organization holds it: only that this key cannot be added twice.
    errors.push({ field: record.plaintext !== undefined ? 'plaintext' : 'sha256', message: 'this key is already stored in Keyward' });
  }
  const owner = await resolveOwner(deps, store, actor, record.owner, errors);
  if (secret?.nativeKind && owner && secret.nativeKind !== (owner.owner.type === 'user' ? 'personal' : 'client')) {
    errors.push({ field: 'plaintext', message: `is a ${secret.nativeKind} Keyward token, so its owner must be ${secret.nativeKind === 'personal' ? 'a member' : 'an API client'}` });
  }
  checkName(record.name, errors);
  const now = deps.now();
  const expiresAt = importedExpiry(org, record.expiresAt ?? null, now, errors);
  const allowedIps = normalizeAllowedIps(org, record.allowedIps ?? [], errors);
  const metadata = record.metadata ?? {};
  checkMetadata(metadata, errors);
  // An importing token's own rate limit and quota carry over, as for a token it creates.
  const settings = inheritRestrictions<RestrictionInput>(actor, { allowedIps: record.allowedIps });
  if (allowedIps.length === 0 && settings.allowedIps) allowedIps.push(...settings.allowedIps);
  const kind: TokenKind = owner?.owner.type === 'client' ? 'client' : 'personal';
  const permission = record.permission ?? (owner?.member ? lowerRole(owner.member.role, actor.permission) : leastPermissionFor(deps.catalog, record.scopes));
  const resourceIds = grantedToBoth(actor, owner?.ownerActor ?? null, record.resources ?? []);
  await collect(errors, 'scopes', (found) => checkScopes(deps.catalog, actor, record.scopes, found));
  await collect(errors, 'permission', () => checkPermission(actor, permission));
  await collect(errors, 'resources', (found) => checkResources(store, actor, resourceIds, found));
  await collect(errors, 'restrictions', () => checkNoLooserThanCaller(actor, { allowedIps, expiresAt, rateLimit: settings.rateLimit ?? null }));
  if (owner?.ownerActor) checkOwnerCanHold(deps, owner.ownerActor, record.scopes, permission, resourceIds, errors);
  if (owner && errors.length === 0) {
    const taken = await store.findLiveTokenByName(org.id, owner.owner, record.name, now);
    if (taken) errors.push({ field: 'name', message: `a live token named "${record.name}" already exists for this owner` });
  }
  if (errors.length > 0 || !secret || !owner) return { index, externalId, status: 'failed', errors: dedupe(errors) };

  const id = newId('tok');
  const token = newTokenOf({
    id,
    organizationId: org.id,
    kind,
    owner: owner.owner,
    name: record.name,
    hint: secret.hint,
    digest: secret.digest,
    secretVersion: secret.secretVersion,
    scopes: [...record.scopes],
    permission,
    resourceIds,
    expiresAt,
    allowedIps,
    rateLimit: settings.rateLimit ?? null,
    metadata,
    remaining: settings.remaining ?? null,
    refill: settings.refill ?? null,
    createdAt: now,
  });
  const imported: ImportedKey = { externalId, hashKind: secret.hashKind };
  await store.insertToken(token, imported);
  // `token.created` like any new token (its webhook included), marked as imported.
  await store.insertAuditEvent(
    auditEvent(deps, actor, {
      action: 'token.created',
      organizationId: org.id,
      target: { type: 'token', id },
      details: { kind, name: record.name, scopes: record.scopes, imported: true, externalId, hashKind: secret.hashKind },
    }),
  );
  return { index, externalId, status: 'created', tokenId: id };
}

/** How the key is stored: plaintext is hashed under the keyring now; a SHA-256 waits for the key's first use. */
function importedSecret(deps: ServiceDeps, record: ImportRecord, errors: FieldError[]): ImportedSecret | null {
  const { plaintext, sha256, prefix } = record;
  if ((plaintext === undefined) === (sha256 === undefined)) {
    errors.push({ field: 'plaintext', message: 'give the key as exactly one of plaintext or sha256' });
    return null;
  }
  if (plaintext !== undefined) {
    if (prefix !== undefined) errors.push({ field: 'prefix', message: 'is only for sha256 records: a plaintext key shows its own prefix' });
    const native = parseToken(plaintext, deps.prefixes);
    const legacy = native ? null : legacyPrefixOf(plaintext, deps.legacyPrefixes);
    if (!native && legacy === null) {
      errors.push({ field: 'plaintext', message: 'is neither a Keyward token nor a key with a configured legacy prefix (legacyTokenPrefixes) and at least 16 characters after it' });
      return null;
    }
    const { digest, version } = hashToken(deps.keyring, plaintext);
    return {
      digest,
      secretVersion: version,
      hashKind: 'hmac',
      hint: native ? tokenHint(plaintext) : legacyTokenHint(legacy!, plaintext),
      lookup: lookupDigests(deps.keyring, plaintext, deps.legacyPrefixes),
      nativeKind: native?.kind ?? null,
    };
  }
  const digest = sha256!.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    errors.push({ field: 'sha256', message: 'must be 64 hexadecimal characters' });
    return null;
  }
  // Only a key with a legacy prefix is ever looked up by its SHA-256, so the prefix must be configured.
  if (prefix === undefined || !(deps.legacyPrefixes ?? []).includes(prefix)) {
    errors.push({ field: 'prefix', message: 'must name the configured legacy prefix (legacyTokenPrefixes) the hashed keys start with' });
    return null;
  }
  return { digest, secretVersion: SHA256_SECRET_VERSION, hashKind: 'sha256', hint: legacyTokenHint(prefix), lookup: [digest], nativeKind: null };
}

interface ResolvedOwner {
  owner: TokenOwner;
  member: Membership | null;
  /** What the owning person may grant now; null for an API client. */
  ownerActor: Actor | null;
}

async function resolveOwner(deps: ServiceDeps, store: Store, actor: Actor, owner: ImportOwner, errors: FieldError[]): Promise<ResolvedOwner | null> {
  if ('clientId' in owner) {
    // Service tokens are the business of client managers, as for POST /clients/{id}/tokens.
    if (!hasManagerScope(actor, 'clients:manage')) {
      errors.push({ field: 'owner/clientId', message: 'importing service tokens needs the clients:manage scope' });
      return null;
    }
    const client = await store.findClient(actor.organizationId, owner.clientId);
    if (!client || client.deletedAt) {
      errors.push({ field: 'owner/clientId', message: 'is not an API client of this organization' });
      return null;
    }
    return { owner: { type: 'client', id: client.id }, member: null, ownerActor: null };
  }
  let userId: string | null;
  let field: string;
  if ('email' in owner) {
    field = 'owner/email';
    userId = (await store.findUserByEmail(normalizeEmail(owner.email)))?.user.id ?? null;
  } else {
    field = 'owner/userId';
    userId = owner.userId;
  }
  const member = userId === null ? null : await store.findMembership(actor.organizationId, userId);
  if (!member) {
    errors.push({ field, message: 'is not a member of this organization' });
    return null;
  }
  return { owner: { type: 'user', id: member.userId }, member, ownerActor: actorForMember(deps, member, 'session', SYSTEM_REQUEST) };
}

/**
 * An empty list means "everything the owner reaches"; when the importer or the
 * owner is limited to some resources, their list (or both lists' common part)
 * is written down instead, so nothing widens.
 */
function grantedToBoth(importer: Actor, owner: Actor | null, requested: readonly string[]): string[] {
  if (requested.length > 0) return [...requested];
  const limits = [importer.resourceIds, owner?.resourceIds ?? 'all'].filter((ids): ids is string[] => ids !== 'all');
  if (limits.length === 0) return [];
  const [first, ...rest] = limits;
  return first!.filter((id) => rest.every((other) => other.includes(id)));
}

/** The owner must be able to hold the key's rights, as if they had made it themselves. */
function checkOwnerCanHold(deps: ServiceDeps, owner: Actor, scopes: readonly string[], permission: Role, resourceIds: readonly string[], errors: FieldError[]): void {
  if (unknownScopes(deps.catalog, scopes).length === 0) {
    const beyond = expandScopes(deps.catalog, scopes).filter((scope) => !owner.scopes.includes(scope));
    if (beyond.length > 0) errors.push({ field: 'scopes', message: `the owner's role (${owner.permission}) cannot hold ${beyond.join(', ')}` });
  }
  if (!isRoleAtLeast(owner.permission, permission)) errors.push({ field: 'permission', message: `is above the owner's role (${owner.permission})` });
  const outside = resourceIds.filter((id) => !canAccessResource(owner, id));
  if (outside.length > 0) errors.push({ field: 'resources', message: `the owner cannot access ${outside.join(', ')}` });
}

function importedExpiry(org: Organization, expiresAt: Date | null, now: Date, errors: FieldError[]): Date | null {
  const policy = org.tokenPolicy;
  if (expiresAt === null) {
    if (!policy.allowNoExpiry) errors.push({ field: 'expiresAt', message: 'this organization requires tokens to expire: give the key its expiry' });
    return null;
  }
  if (Number.isNaN(expiresAt.getTime()) || expiresAt <= now) {
    errors.push({ field: 'expiresAt', message: 'must be in the future' });
    return null;
  }
  if (expiresAt.getTime() > now.getTime() + policy.maxLifetimeDays * DAY_MS) {
    errors.push({ field: 'expiresAt', message: `must be within the organization's maximum lifetime of ${policy.maxLifetimeDays} days` });
  }
  return expiresAt;
}

/**
 * Runs one of creation's checks for this record: what it finds, and what it
 * would refuse the request for, become field errors of the record instead of
 * a refusal of the batch. Each check gets its own list, since some stop early
 * when the list they are given already holds an error.
 */
async function collect(errors: FieldError[], field: string, check: (found: FieldError[]) => void | Promise<void>): Promise<void> {
  const found: FieldError[] = [];
  try {
    await check(found);
  } catch (error) {
    if (!(error instanceof KeywardError)) throw error;
    if (error instanceof ValidationError) found.push(...error.errors);
    else found.push({ field, message: error.message });
  }
  errors.push(...found);
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((error) => {
    const key = `${error.field}\u0000${error.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
