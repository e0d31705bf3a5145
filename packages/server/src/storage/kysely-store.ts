// The Store port on Kysely: the same queries on SQLite and PostgreSQL.
import { sql, type ExpressionBuilder, type Expression, type Kysely, type SqlBool } from 'kysely';
import type {
  ApiClient,
  AuditEvent,
  AuditFilter,
  ImportedKey,
  Invitation,
  Member,
  MemberPageRequest,
  Membership,
  NewToken,
  Organization,
  PageAfter,
  PageRequest,
  RateLimitSetting,
  Resource,
  ResourceRef,
  Role,
  Session,
  Store,
  TokenChanges,
  TokenFilter,
  TokenPolicy,
  TokenRecord,
  TokenStatus,
  User,
} from '@keyward/core';
import { auditEventFromRow, auditEventToRow } from './audit-rows.ts';
import { capabilitiesOf, type DialectCapabilities } from './dialect-capabilities.ts';
import { invitationFromRow, invitationToRow } from './invitation-rows.ts';
import { memberFromRow, membershipFromRow, membershipToRow } from './membership-rows.ts';
import { organizationFromRow, organizationToRow, tokenPolicyToRow } from './organization-rows.ts';
import { clientFromRow, clientToRow, resourceFromRow, resourceToRow } from './resource-rows.ts';
import { toFlag, uniqueIds, type TimestampReader } from './row-values.ts';
import type { Schema } from './schema.ts';
import { tokenChangesToRow, tokenFromRow, tokenToRow, type TokenRow } from './token-rows.ts';
import { sessionFromRow, sessionToRow, userFromRow, userToRow } from './user-rows.ts';
import { recordWebhookEvent } from './webhook-outbox.ts';
import { webhookEventOf } from '../webhooks/webhook-events.ts';

/** Bound parameters per statement stay far below SQLite's and PostgreSQL's limits. */
const IN_LIST_CHUNK = 500;

function chunks<T>(items: readonly T[], size = IN_LIST_CHUNK): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

/** Rows strictly after the cursor in newest-first order: older, or as old with a smaller id. */
export function isAfter(after: PageAfter, createdAtColumn: string, idColumn: string): Expression<SqlBool> {
  const createdAt = sql.ref(createdAtColumn);
  return sql<SqlBool>`(${createdAt} < ${after.at} or (${createdAt} = ${after.at} and ${sql.ref(idColumn)} < ${after.id}))`;
}

/** As isAfter; a null id also takes every row at `at` itself (the member list merges two kinds of rows). */
function isAfterInMemberList(after: { at: Date; id: string | null }, createdAtColumn: string, idColumn: string): Expression<SqlBool> {
  if (after.id === null) return sql<SqlBool>`${sql.ref(createdAtColumn)} <= ${after.at}`;
  return isAfter({ at: after.at, id: after.id }, createdAtColumn, idColumn);
}

type TokensExpressions = ExpressionBuilder<Schema, 'tokens'>;

// These four mirror tokenStatus() in core types.ts; a rotated-out token past
// its grace period counts as revoked.
function isRevoked(eb: TokensExpressions, now: Date): Expression<SqlBool> {
  return eb.or([
    eb('revokedAt', 'is not', null),
    eb.and([eb('rotatedAt', 'is not', null), eb.or([eb('graceUntil', 'is', null), eb('graceUntil', '<=', now)])]),
  ]);
}

function isNotRevoked(eb: TokensExpressions, now: Date): Expression<SqlBool> {
  return eb.and([
    eb('revokedAt', 'is', null),
    eb.or([eb('rotatedAt', 'is', null), eb.and([eb('graceUntil', 'is not', null), eb('graceUntil', '>', now)])]),
  ]);
}

function isExpired(eb: TokensExpressions, now: Date): Expression<SqlBool> {
  return eb.and([eb('expiresAt', 'is not', null), eb('expiresAt', '<=', now)]);
}

function isNotExpired(eb: TokensExpressions, now: Date): Expression<SqlBool> {
  return eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]);
}

function hasStatus(eb: TokensExpressions, status: TokenStatus, now: Date): Expression<SqlBool> {
  switch (status) {
    case 'revoked':
      return isRevoked(eb, now);
    case 'expired':
      return eb.and([isNotRevoked(eb, now), isExpired(eb, now)]);
    case 'disabled':
      return eb.and([isNotRevoked(eb, now), isNotExpired(eb, now), eb('disabledAt', 'is not', null)]);
    case 'active':
      return eb.and([isNotRevoked(eb, now), isNotExpired(eb, now), eb('disabledAt', 'is', null)]);
  }
}

/**
 * One implementation for both dialects. Pass the Kysely instance, or a
 * Transaction: a store built on a transaction runs everything inside it.
 *
 * @example
 * const store = new KyselyStore(database.db);
 * await store.transaction(async (tx) => { await tx.insertToken(token); await tx.insertAuditEvent(event); });
 */
export class KyselyStore implements Store {
  readonly db: Kysely<Schema>;
  readonly capabilities: DialectCapabilities;
  readonly read: TimestampReader;

  /** Without `capabilities`, they are read off the instance's dialect. */
  constructor(db: Kysely<Schema>, capabilities: DialectCapabilities = capabilitiesOf(db)) {
    this.db = db;
    this.capabilities = capabilities;
    this.read = capabilities.readTimestamp;
  }

  /** Inside a transaction already, `work` simply joins it (no savepoint). */
  async transaction<T>(work: (store: Store) => Promise<T>): Promise<T> {
    return this.atomically(work);
  }

  /** Multi-statement methods run through this, so each is atomic even when called outside a transaction. */
  private async atomically<T>(work: (store: KyselyStore) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return work(this);
    return this.db.transaction().execute((trx) => work(new KyselyStore(trx, this.capabilities)));
  }

  // ── users ──────────────────────────────────────────────────────────────

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async findUserById(id: string): Promise<User | null> {
    const row = await this.db.selectFrom('users').select(['id', 'email', 'createdAt']).where('id', '=', id).executeTakeFirst();
    return row ? userFromRow(row, this.read) : null;
  }

  async findUserByEmail(email: string): Promise<{ user: User; passwordHash: string | null } | null> {
    const row = await this.db.selectFrom('users').select(['id', 'email', 'createdAt', 'passwordHash']).where('email', '=', email).executeTakeFirst();
    return row ? { user: userFromRow(row, this.read), passwordHash: row.passwordHash } : null;
  }

  async insertUser(user: User, passwordHash: string | null): Promise<void> {
    await this.db.insertInto('users').values(userToRow(user, passwordHash)).execute();
  }

  async setUserPassword(userId: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ passwordHash, inviteDigest: null, inviteExpiresAt: null }).where('id', '=', userId).execute();
  }

  async setUserInvite(userId: string, inviteDigest: string, expiresAt: Date): Promise<void> {
    await this.db.updateTable('users').set({ inviteDigest, inviteExpiresAt: expiresAt }).where('id', '=', userId).execute();
  }

  async consumeInvite(inviteDigest: string, now: Date): Promise<User | null> {
    // One statement: two concurrent accepts cannot both consume the invitation.
    const row = await this.db
      .updateTable('users')
      .set({ inviteDigest: null, inviteExpiresAt: null })
      .where('inviteDigest', '=', inviteDigest)
      .where('inviteExpiresAt', '>', now)
      .returning(['id', 'email', 'createdAt'])
      .executeTakeFirst();
    return row ? userFromRow(row, this.read) : null;
  }

  // ── organizations ──────────────────────────────────────────────────────

  async insertOrganization(org: Organization): Promise<void> {
    await this.db.insertInto('organizations').values(organizationToRow(org)).execute();
  }

  async lockOrganization(id: string): Promise<void> {
    // A no-op write takes the row lock on PostgreSQL; SQLite's write transactions already run one at a time.
    await this.db.updateTable('organizations').set((eb) => ({ name: eb.ref('name') })).where('id', '=', id).execute();
  }

  async findOrganization(id: string): Promise<Organization | null> {
    const row = await this.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? organizationFromRow(row, this.read) : null;
  }

  async findOrganizationBySlug(slug: string): Promise<Organization | null> {
    const row = await this.db.selectFrom('organizations').selectAll().where('slug', '=', slug).executeTakeFirst();
    return row ? organizationFromRow(row, this.read) : null;
  }

  async updateOrganization(id: string, changes: { name?: string; tokenPolicy?: TokenPolicy }): Promise<void> {
    const row = { ...(changes.name !== undefined ? { name: changes.name } : {}), ...(changes.tokenPolicy ? tokenPolicyToRow(changes.tokenPolicy) : {}) };
    if (Object.keys(row).length === 0) return;
    await this.db.updateTable('organizations').set(row).where('id', '=', id).execute();
  }

  // ── memberships ────────────────────────────────────────────────────────

  async listMembershipsOfUser(userId: string): Promise<Array<Membership & { organization: Organization }>> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('organizations', 'organizations.id', 'memberships.organizationId')
      .selectAll('organizations')
      .select(['memberships.role', 'memberships.allResources', 'memberships.createdAt as membershipCreatedAt'])
      .where('memberships.userId', '=', userId)
      .orderBy('memberships.createdAt', 'asc')
      .orderBy('memberships.organizationId', 'asc')
      .execute();
    const limitedOrgIds = rows.filter((row) => Number(row.allResources) === 0).map((row) => row.id);
    const limits = new Map<string, string[]>();
    if (limitedOrgIds.length > 0) {
      const limitRows = await this.db
        .selectFrom('membershipResources')
        .select(['organizationId', 'resourceId'])
        .where('userId', '=', userId)
        .where('organizationId', 'in', limitedOrgIds)
        .orderBy('resourceId')
        .execute();
      for (const row of limitRows) limits.set(row.organizationId, [...(limits.get(row.organizationId) ?? []), row.resourceId]);
    }
    return rows.map((row) => {
      const membershipRow = { organizationId: row.id, userId, role: row.role, allResources: row.allResources, createdAt: row.membershipCreatedAt };
      return { ...membershipFromRow(membershipRow, limits.get(row.id), this.read), organization: organizationFromRow(row, this.read) };
    });
  }

  async findMembership(organizationId: string, userId: string): Promise<Membership | null> {
    const row = await this.db.selectFrom('memberships').selectAll().where('organizationId', '=', organizationId).where('userId', '=', userId).executeTakeFirst();
    if (!row) return null;
    const limits = await this.membershipLimits(organizationId, Number(row.allResources) === 0 ? [userId] : []);
    return membershipFromRow(row, limits.get(userId), this.read);
  }

  async listMembers(organizationId: string, page: MemberPageRequest): Promise<Member[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.userId')
      .selectAll('memberships')
      .select((eb) => ['users.email', eb('users.passwordHash', 'is not', null).as('hasPassword')])
      .where('memberships.organizationId', '=', organizationId)
      .$if(page.after !== undefined, (qb) => qb.where(isAfterInMemberList(page.after as NonNullable<MemberPageRequest['after']>, 'memberships.createdAt', 'memberships.userId')))
      .orderBy('memberships.createdAt', 'desc')
      .orderBy('memberships.userId', 'desc')
      .limit(page.limit)
      .execute();
    const limits = await this.membershipLimits(
      organizationId,
      rows.filter((row) => Number(row.allResources) === 0).map((row) => row.userId),
    );
    return rows.map((row) => memberFromRow(row, limits.get(row.userId), this.read));
  }

  async isMemberByEmail(organizationId: string, email: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.userId')
      .select('memberships.userId')
      .where('memberships.organizationId', '=', organizationId)
      .where('users.email', '=', email)
      .executeTakeFirst();
    return row !== undefined;
  }

  // ── membership invitations ─────────────────────────────────────────────

  async replaceInvitation(invitation: Invitation, inviteDigest: string): Promise<void> {
    await this.atomically(async ({ db }) => {
      await db.deleteFrom('membershipInvitations').where('organizationId', '=', invitation.organizationId).where('email', '=', invitation.email).execute();
      await db.insertInto('membershipInvitations').values(invitationToRow(invitation, inviteDigest)).execute();
    });
  }

  async findInvitation(organizationId: string, id: string): Promise<Invitation | null> {
    const row = await this.db.selectFrom('membershipInvitations').selectAll().where('organizationId', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? invitationFromRow(row, this.read) : null;
  }

  async listInvitations(organizationId: string, page: MemberPageRequest): Promise<Invitation[]> {
    const rows = await this.db
      .selectFrom('membershipInvitations')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .$if(page.after !== undefined, (qb) => qb.where(isAfterInMemberList(page.after as NonNullable<MemberPageRequest['after']>, 'createdAt', 'id')))
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit)
      .execute();
    return rows.map((row) => invitationFromRow(row, this.read));
  }

  async deleteInvitation(organizationId: string, id: string): Promise<void> {
    await this.db.deleteFrom('membershipInvitations').where('organizationId', '=', organizationId).where('id', '=', id).execute();
  }

  async consumeInvitation(inviteDigest: string, now: Date): Promise<Invitation | null> {
    // One statement: two concurrent accepts cannot both consume the invitation.
    const row = await this.db.deleteFrom('membershipInvitations').where('inviteDigest', '=', inviteDigest).where('expiresAt', '>', now).returningAll().executeTakeFirst();
    return row ? invitationFromRow(row, this.read) : null;
  }

  async countOwners(organizationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('organizationId', '=', organizationId)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async insertMembership(membership: Membership): Promise<void> {
    await this.atomically(async (store) => {
      const { db } = store;
      await db.insertInto('memberships').values(membershipToRow(membership)).execute();
      if (membership.resourceIds !== 'all') await store.writeMembershipLimits(membership.organizationId, membership.userId, membership.resourceIds);
    });
  }

  async updateMembership(organizationId: string, userId: string, changes: { role?: Role; resourceIds?: string[] | 'all' }): Promise<void> {
    await this.atomically(async (store) => {
      const { db } = store;
      const { role, resourceIds } = changes;
      const row = { ...(role !== undefined ? { role } : {}), ...(resourceIds !== undefined ? { allResources: toFlag(resourceIds === 'all') } : {}) };
      if (Object.keys(row).length > 0) {
        await db.updateTable('memberships').set(row).where('organizationId', '=', organizationId).where('userId', '=', userId).execute();
      }
      if (resourceIds !== undefined) {
        await db.deleteFrom('membershipResources').where('organizationId', '=', organizationId).where('userId', '=', userId).execute();
        if (resourceIds !== 'all') await store.writeMembershipLimits(organizationId, userId, resourceIds);
      }
    });
  }

  async deleteMembership(organizationId: string, userId: string): Promise<void> {
    // membership_resources rows go with it (on delete cascade).
    await this.db.deleteFrom('memberships').where('organizationId', '=', organizationId).where('userId', '=', userId).execute();
  }

  private async writeMembershipLimits(organizationId: string, userId: string, resourceIds: readonly string[]): Promise<void> {
    const rows = uniqueIds(resourceIds).map((resourceId) => ({ organizationId, userId, resourceId }));
    for (const part of chunks(rows)) await this.db.insertInto('membershipResources').values(part).execute();
  }

  /** Resource lists of the given (limited) members, by user id, in one query. */
  private async membershipLimits(organizationId: string, userIds: readonly string[]): Promise<Map<string, string[]>> {
    const limits = new Map<string, string[]>();
    if (userIds.length === 0) return limits;
    const rows = await this.db
      .selectFrom('membershipResources')
      .select(['userId', 'resourceId'])
      .where('organizationId', '=', organizationId)
      .where('userId', 'in', userIds)
      .orderBy('resourceId')
      .execute();
    for (const row of rows) limits.set(row.userId, [...(limits.get(row.userId) ?? []), row.resourceId]);
    return limits;
  }

  // ── resources ──────────────────────────────────────────────────────────

  async insertResource(resource: Resource): Promise<void> {
    await this.db.insertInto('resources').values(resourceToRow(resource)).execute();
  }

  async findResource(organizationId: string, id: string): Promise<Resource | null> {
    const row = await this.db.selectFrom('resources').selectAll().where('organizationId', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? resourceFromRow(row, this.read) : null;
  }

  async listResources(organizationId: string, page: PageRequest): Promise<Resource[]> {
    const rows = await this.db
      .selectFrom('resources')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .$if(page.after !== undefined, (qb) => qb.where(isAfter(page.after as PageAfter, 'createdAt', 'id')))
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit)
      .execute();
    return rows.map((row) => resourceFromRow(row, this.read));
  }

  async findResourcesByIds(organizationId: string, ids: readonly string[]): Promise<Resource[]> {
    const found: Resource[] = [];
    for (const part of chunks(uniqueIds(ids))) {
      const rows = await this.db.selectFrom('resources').selectAll().where('organizationId', '=', organizationId).where('id', 'in', part).execute();
      found.push(...rows.map((row) => resourceFromRow(row, this.read)));
    }
    return found;
  }

  async findResourceByName(organizationId: string, type: string, name: string): Promise<Resource | null> {
    const row = await this.db
      .selectFrom('resources')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .where('type', '=', type)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? resourceFromRow(row, this.read) : null;
  }

  async deleteResource(organizationId: string, id: string): Promise<void> {
    // token_resources and membership_resources rows go with it (on delete cascade).
    await this.db.deleteFrom('resources').where('organizationId', '=', organizationId).where('id', '=', id).execute();
  }

  // ── API clients ────────────────────────────────────────────────────────

  async insertClient(client: ApiClient): Promise<void> {
    await this.db.insertInto('apiClients').values(clientToRow(client)).execute();
  }

  /** Answers deleted clients too (with deletedAt): their tokens still point at them. */
  async findClient(organizationId: string, id: string): Promise<ApiClient | null> {
    const row = await this.db.selectFrom('apiClients').selectAll().where('organizationId', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? clientFromRow(row, this.read) : null;
  }

  /** Live clients only: a deleted client's name is free again. */
  async findClientByName(organizationId: string, name: string): Promise<ApiClient | null> {
    const row = await this.db
      .selectFrom('apiClients')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .where('name', '=', name)
      .where('deletedAt', 'is', null)
      .executeTakeFirst();
    return row ? clientFromRow(row, this.read) : null;
  }

  /** Live clients only; deleted ones stay in the table for the audit trail. */
  async listClients(organizationId: string, page: PageRequest): Promise<ApiClient[]> {
    const rows = await this.db
      .selectFrom('apiClients')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .where('deletedAt', 'is', null)
      .$if(page.after !== undefined, (qb) => qb.where(isAfter(page.after as PageAfter, 'createdAt', 'id')))
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit)
      .execute();
    return rows.map((row) => clientFromRow(row, this.read));
  }

  async updateClient(organizationId: string, id: string, changes: { name?: string; description?: string | null; rateLimit?: RateLimitSetting | null }): Promise<void> {
    const row = {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      ...(changes.rateLimit !== undefined ? { rateLimit: changes.rateLimit === null ? null : JSON.stringify(changes.rateLimit) } : {}),
    };
    if (Object.keys(row).length === 0) return;
    await this.db.updateTable('apiClients').set(row).where('organizationId', '=', organizationId).where('id', '=', id).execute();
  }

  async markClientDeleted(organizationId: string, id: string, at: Date): Promise<void> {
    await this.db
      .updateTable('apiClients')
      .set({ deletedAt: at })
      .where('organizationId', '=', organizationId)
      .where('id', '=', id)
      .where('deletedAt', 'is', null)
      .execute();
  }

  // ── tokens ─────────────────────────────────────────────────────────────

  async insertToken(token: NewToken, imported?: ImportedKey): Promise<void> {
    await this.atomically(async (store) => {
      await store.db.insertInto('tokens').values(tokenToRow(token, imported)).execute();
      await store.writeGrants(token.id, token.resourceIds);
    });
  }

  async findToken(organizationId: string, id: string): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('organizationId', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row ? ((await this.withGrants([row]))[0] ?? null) : null;
  }

  async findTokenIdByExternalId(organizationId: string, externalId: string): Promise<string | null> {
    const row = await this.db.selectFrom('tokens').select('id').where('organizationId', '=', organizationId).where('externalId', '=', externalId).executeTakeFirst();
    return row?.id ?? null;
  }

  async findTokenByDigests(digests: readonly string[]): Promise<TokenRecord | null> {
    if (digests.length === 0) return null;
    const row = await this.db.selectFrom('tokens').selectAll().where('digest', 'in', uniqueIds(digests)).executeTakeFirst();
    return row ? ((await this.withGrants([row]))[0] ?? null) : null;
  }

  async listTokens(filter: TokenFilter): Promise<TokenRecord[]> {
    const { ownerUserId, clientId, kind, status, after, now } = filter;
    const rows = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('organizationId', '=', filter.organizationId)
      .$if(ownerUserId !== undefined, (qb) => qb.where('ownerType', '=', 'user').where('ownerId', '=', ownerUserId as string))
      .$if(clientId !== undefined, (qb) => qb.where('ownerType', '=', 'client').where('ownerId', '=', clientId as string))
      .$if(kind !== undefined, (qb) => qb.where('kind', '=', kind as string))
      .$if(status !== undefined, (qb) => qb.where((eb) => hasStatus(eb, status as TokenStatus, now)))
      .$if(after !== undefined, (qb) => qb.where(isAfter(after as PageAfter, 'createdAt', 'id')))
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit)
      .execute();
    return this.withGrants(rows);
  }

  async findLiveTokenByName(organizationId: string, owner: TokenRecord['owner'], name: string, now: Date): Promise<TokenRecord | null> {
    const row = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('organizationId', '=', organizationId)
      .where('ownerType', '=', owner.type)
      .where('ownerId', '=', owner.id)
      .where('name', '=', name)
      .where('revokedAt', 'is', null)
      .where('rotatedAt', 'is', null)
      .where((eb) => isNotExpired(eb, now))
      .executeTakeFirst();
    return row ? ((await this.withGrants([row]))[0] ?? null) : null;
  }

  async updateToken(id: string, changes: TokenChanges): Promise<void> {
    await this.atomically(async (store) => {
      const { db } = store;
      const row = tokenChangesToRow(changes);
      if (Object.keys(row).length > 0) await db.updateTable('tokens').set(row).where('id', '=', id).execute();
      if (changes.resourceIds !== undefined) {
        await db.deleteFrom('tokenResources').where('tokenId', '=', id).execute();
        await store.writeGrants(id, changes.resourceIds);
      }
    });
  }

  async touchToken(id: string, at: Date, ip: string | null): Promise<void> {
    await this.db.updateTable('tokens').set({ lastUsedAt: at, lastUsedIp: ip }).where('id', '=', id).execute();
  }

  async rehashToken(id: string, digest: string, secretVersion: string): Promise<void> {
    await this.db.updateTable('tokens').set({ digest, secretVersion, hashKind: 'hmac' }).where('id', '=', id).execute();
  }

  async markTokenRotated(id: string, at: Date, graceUntil: Date): Promise<boolean> {
    // Conditional in the one statement: of two concurrent rotations only one can mark the token.
    const result = await this.db
      .updateTable('tokens')
      .set({ rotatedAt: at, graceUntil })
      .where('id', '=', id)
      .where('rotatedAt', 'is', null)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async revokeTokens(ids: readonly string[], at: Date, reason: string): Promise<string[]> {
    const revoked = new Set<string>();
    for (const part of chunks(uniqueIds(ids))) {
      // `revoked_at is null` in the same statement: a token revoked meanwhile is neither changed nor reported.
      const rows = await this.db
        .updateTable('tokens')
        .set({ revokedAt: at, revokedReason: reason })
        .where('id', 'in', part)
        .where('revokedAt', 'is', null)
        .returning('id')
        .execute();
      for (const row of rows) revoked.add(row.id);
    }
    // In the caller's order, whatever order the database returned them in.
    return uniqueIds(ids).filter((id) => revoked.has(id));
  }

  async findUnrevokedTokenIds(query: { lineageId?: string; clientId?: string; organizationId?: string; userId?: string }): Promise<string[]> {
    const { lineageId, organizationId, userId, clientId } = query;
    // An empty query must not select every token of the database for revocation.
    if (lineageId === undefined && userId === undefined && clientId === undefined) {
      throw new TypeError('findUnrevokedTokenIds needs a lineageId, a userId or a clientId');
    }
    const rows = await this.db
      .selectFrom('tokens')
      .select('id')
      .where('revokedAt', 'is', null)
      .$if(lineageId !== undefined, (qb) => qb.where('lineageId', '=', lineageId as string))
      .$if(organizationId !== undefined, (qb) => qb.where('organizationId', '=', organizationId as string))
      .$if(userId !== undefined, (qb) => qb.where('ownerType', '=', 'user').where('ownerId', '=', userId as string))
      .$if(clientId !== undefined, (qb) => qb.where('ownerType', '=', 'client').where('ownerId', '=', clientId as string))
      .orderBy('createdAt', 'asc')
      .orderBy('id', 'asc')
      .execute();
    return rows.map((row) => row.id);
  }

  private async writeGrants(tokenId: string, resourceIds: readonly string[]): Promise<void> {
    const rows = uniqueIds(resourceIds).map((resourceId, rank) => ({ tokenId, resourceId, rank }));
    for (const part of chunks(rows)) await this.db.insertInto('tokenResources').values(part).execute();
  }

  /** Attaches the ranked grants of all the rows with one query, whatever the page size. */
  private async withGrants(rows: readonly TokenRow[]): Promise<TokenRecord[]> {
    const grants = new Map<string, ResourceRef[]>();
    if (rows.length > 0) {
      const grantRows = await this.db
        .selectFrom('tokenResources')
        .innerJoin('resources', 'resources.id', 'tokenResources.resourceId')
        .select(['tokenResources.tokenId', 'resources.id', 'resources.type', 'resources.name'])
        .where(
          'tokenResources.tokenId',
          'in',
          rows.map((row) => row.id),
        )
        .orderBy('tokenResources.tokenId')
        .orderBy('tokenResources.rank')
        .execute();
      for (const grant of grantRows) {
        const list = grants.get(grant.tokenId) ?? [];
        list.push({ id: grant.id, type: grant.type, name: grant.name });
        grants.set(grant.tokenId, list);
      }
    }
    return rows.map((row) => tokenFromRow(row, grants.get(row.id) ?? [], this.read));
  }

  // ── audit ──────────────────────────────────────────────────────────────

  /**
   * Also writes the webhook outbox event the action reports, if any endpoint
   * subscribed to it: in the caller's transaction, so the event commits or
   * rolls back with the change and its audit row.
   */
  async insertAuditEvent(event: AuditEvent): Promise<void> {
    if (webhookEventOf(event.action) === null) {
      await this.db.insertInto('auditEvents').values(auditEventToRow(event)).execute();
      return;
    }
    await this.atomically(async ({ db }) => {
      await db.insertInto('auditEvents').values(auditEventToRow(event)).execute();
      await recordWebhookEvent(db, event, this.read);
    });
  }

  /** `since` is inclusive, `until` exclusive; newest first. */
  async listAuditEvents(filter: AuditFilter): Promise<AuditEvent[]> {
    const { action, actorId, targetId, since, until, after } = filter;
    const rows = await this.db
      .selectFrom('auditEvents')
      .selectAll()
      .where('organizationId', '=', filter.organizationId)
      .$if(action !== undefined, (qb) => qb.where('action', '=', action as string))
      .$if(actorId !== undefined, (qb) => qb.where('actorId', '=', actorId as string))
      .$if(targetId !== undefined, (qb) => qb.where('targetId', '=', targetId as string))
      .$if(since !== undefined, (qb) => qb.where('at', '>=', since as Date))
      .$if(until !== undefined, (qb) => qb.where('at', '<', until as Date))
      .$if(after !== undefined, (qb) => qb.where(isAfter(after as PageAfter, 'at', 'id')))
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit)
      .execute();
    return rows.map((row) => auditEventFromRow(row, this.read));
  }

  // ── sessions ───────────────────────────────────────────────────────────

  async insertSession(session: Session): Promise<void> {
    await this.db.insertInto('sessions').values(sessionToRow(session)).execute();
  }

  /** Answers expired sessions too; the caller compares expiresAt with its clock. */
  async findSession(id: string): Promise<Session | null> {
    const row = await this.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? sessionFromRow(row, this.read) : null;
  }

  async deleteExpiredSessions(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('sessions').where('expiresAt', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteSession(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }
}
