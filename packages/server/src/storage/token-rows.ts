// tokens (+ token_resources) rows ↔ records.
import type { Insertable, Selectable, Updateable } from 'kysely';
import type { DisabledBy, ImportedKey, NewToken, RateLimitSetting, Refill, ResourceRef, TokenChanges, TokenKind, TokenOwner, TokenRecord } from '@keyward/core';
import { roleFromColumn } from './membership-rows.ts';
import { fromFlag, fromJson, fromOptionalJson, readOptionalTimestamp, toFlag, toJson, type TimestampReader } from './row-values.ts';
import type { TokensTable } from './schema.ts';

export type TokenRow = Selectable<TokensTable>;

function kindFromColumn(value: string): TokenKind {
  if (value !== 'personal' && value !== 'client') throw new TypeError(`Unknown token kind in storage: ${value}`);
  return value;
}

function ownerTypeFromColumn(value: string): TokenOwner['type'] {
  if (value !== 'user' && value !== 'client') throw new TypeError(`Unknown token owner type in storage: ${value}`);
  return value;
}

function disabledByFromRow(row: TokenRow): DisabledBy | null {
  if (row.disabledByType === null || row.disabledByPermission === null) return null;
  const type = row.disabledByType;
  if (type !== 'user' && type !== 'token' && type !== 'system') throw new TypeError(`Unknown disabler type in storage: ${type}`);
  return { type, id: row.disabledById, permission: roleFromColumn(row.disabledByPermission) };
}

function disabledByToRow(disabledBy: DisabledBy | null): Pick<Insertable<TokensTable>, 'disabledByType' | 'disabledById' | 'disabledByPermission'> {
  return { disabledByType: disabledBy?.type ?? null, disabledById: disabledBy?.id ?? null, disabledByPermission: disabledBy?.permission ?? null };
}

/** `resources` are the token's grants, already in rank order. */
export function tokenFromRow(row: TokenRow, resources: ResourceRef[], read: TimestampReader): TokenRecord {
  return {
    id: row.id,
    organizationId: row.organizationId,
    kind: kindFromColumn(row.kind),
    owner: { type: ownerTypeFromColumn(row.ownerType), id: row.ownerId },
    name: row.name,
    hint: row.hint,
    digest: row.digest,
    secretVersion: row.secretVersion,
    scopes: fromJson<string[]>(row.scopes),
    permission: roleFromColumn(row.permission),
    resources,
    resourcesLimited: fromFlag(row.resourcesLimited),
    expiresAt: readOptionalTimestamp(read, row.expiresAt),
    disabledAt: readOptionalTimestamp(read, row.disabledAt),
    disabledBy: disabledByFromRow(row),
    revokedAt: readOptionalTimestamp(read, row.revokedAt),
    revokedReason: row.revokedReason,
    allowedIps: fromJson<string[]>(row.allowedIps),
    rateLimit: fromOptionalJson<RateLimitSetting>(row.rateLimit),
    metadata: fromJson<Record<string, unknown>>(row.metadata),
    remaining: row.remaining === null ? null : Number(row.remaining),
    refill: fromOptionalJson<Refill>(row.refill),
    lineageId: row.lineageId,
    rotatedFrom: row.rotatedFrom,
    rotatedAt: readOptionalTimestamp(read, row.rotatedAt),
    graceUntil: readOptionalTimestamp(read, row.graceUntil),
    createdAt: read(row.createdAt),
    lastUsedAt: readOptionalTimestamp(read, row.lastUsedAt),
    lastUsedIp: row.lastUsedIp,
  };
}

/**
 * Picks the columns explicitly: callers may pass a whole TokenRecord (rotation
 * copies the old one, and its successor is an ordinary HMAC-hashed token).
 */
export function tokenToRow(token: NewToken, imported?: ImportedKey): Insertable<TokensTable> {
  return {
    id: token.id,
    organizationId: token.organizationId,
    kind: token.kind,
    ownerType: token.owner.type,
    ownerId: token.owner.id,
    name: token.name,
    hint: token.hint,
    digest: token.digest,
    secretVersion: token.secretVersion,
    scopes: toJson(token.scopes),
    permission: token.permission,
    resourcesLimited: toFlag(token.resourcesLimited),
    expiresAt: token.expiresAt,
    disabledAt: token.disabledAt,
    ...disabledByToRow(token.disabledBy),
    revokedAt: token.revokedAt,
    revokedReason: token.revokedReason,
    allowedIps: toJson(token.allowedIps),
    rateLimit: token.rateLimit === null ? null : toJson(token.rateLimit),
    metadata: toJson(token.metadata),
    remaining: token.remaining,
    refill: token.refill === null ? null : toJson(token.refill),
    lineageId: token.lineageId,
    rotatedFrom: token.rotatedFrom,
    rotatedAt: token.rotatedAt,
    graceUntil: token.graceUntil,
    createdAt: token.createdAt,
    lastUsedAt: null,
    lastUsedIp: null,
    hashKind: imported?.hashKind ?? 'hmac',
    externalId: imported?.externalId ?? null,
  };
}

/** The column changes of a TokenChanges; `resourceIds` is written to token_resources separately. */
export function tokenChangesToRow(changes: TokenChanges): Updateable<TokensTable> {
  const row: Updateable<TokensTable> = {};
  if (changes.name !== undefined) row.name = changes.name;
  if (changes.scopes !== undefined) row.scopes = toJson(changes.scopes);
  if (changes.resourcesLimited !== undefined) row.resourcesLimited = toFlag(changes.resourcesLimited);
  if (changes.disabledAt !== undefined) row.disabledAt = changes.disabledAt;
  if (changes.disabledBy !== undefined) Object.assign(row, disabledByToRow(changes.disabledBy));
  if (changes.allowedIps !== undefined) row.allowedIps = toJson(changes.allowedIps);
  if (changes.rateLimit !== undefined) row.rateLimit = changes.rateLimit === null ? null : toJson(changes.rateLimit);
  if (changes.metadata !== undefined) row.metadata = toJson(changes.metadata);
  if (changes.remaining !== undefined) row.remaining = changes.remaining;
  if (changes.refill !== undefined) row.refill = changes.refill === null ? null : toJson(changes.refill);
  if (changes.quotaPeriodStart !== undefined) row.quotaPeriodStart = changes.quotaPeriodStart;
  return row;
}
