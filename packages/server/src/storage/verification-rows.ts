// The storage side of the verification path: one round trip per cache miss
// (the token joined with its owner's current access), the atomic quota
// spend, and the batched writes the verifier buffers (last use, re-hashes).
import { setImmediate } from 'node:timers/promises';
import { CompiledQuery, type Kysely, type RawBuilder } from 'kysely';
import { jsonArrayFrom as postgresJsonArrayFrom } from 'kysely/helpers/postgres';
import { jsonArrayFrom as sqliteJsonArrayFrom } from 'kysely/helpers/sqlite';
import type { OwnerSnapshot, RateLimitSetting, Refill, ResourceRef, TokenRecord } from '@keyward/core';
import { capabilitiesOf, type DialectCapabilities } from './dialect-capabilities.ts';
import { roleFromColumn } from './membership-rows.ts';
import { fromFlag, fromOptionalJson, readOptionalTimestamp, uniqueIds } from './row-values.ts';
import type { Schema } from './schema.ts';
import type { SqliteReader } from './sqlite-reader.ts';
import { tokenFromRow, type TokenRow } from './token-rows.ts';

export interface TokenForVerification {
  token: TokenRecord;
  /** Null when the owner no longer has access: removed member, deleted client, disabled organization. */
  owner: OwnerSnapshot | null;
}

export interface LastUse {
  tokenId: string;
  /** When (ms since the epoch): a number, so a flush of many uses makes no Date each. */
  atMs: number;
  ip: string | null;
}

export interface QuotaSpend {
  /** False when the credits left were fewer than the cost: nothing was spent. */
  spent: boolean;
  remaining: number;
}

/** Start of the refill period that `at` falls in (UTC days and months). */
export function quotaPeriodStart(refill: Refill, at: Date): Date {
  return refill.interval === 'daily'
    ? new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()))
    : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** Three parameters a row: far below SQLite's 32,766 and PostgreSQL's 65,535 per statement. */
const LAST_USES_PER_STATEMENT = 1_000;

function parseJsonArray(value: unknown): ResourceRef[] {
  // SQLite hands the aggregate back as text, PostgreSQL as parsed JSON.
  const parsed = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  return Array.isArray(parsed) ? (parsed as ResourceRef[]) : [];
}

type LookupRow = TokenRow & {
  organizationDisabledAt: Date | string | null;
  memberRole: string | null;
  memberAllResources: number | null;
  userEmail: string | null;
  clientId: string | null;
  clientDeletedAt: Date | string | null;
  clientRateLimit: string | null;
  grants: unknown;
  memberResources: unknown;
};

export class VerificationStore {
  private readonly db: Kysely<Schema>;
  private readonly capabilities: DialectCapabilities;

  private readonly reader: SqliteReader | null;

  /** `reader`: SQLite's read-only connection for lookups (Database.reader); without one, lookups go through `db`. */
  constructor(db: Kysely<Schema>, reader: SqliteReader | null = null) {
    this.db = db;
    this.capabilities = capabilitiesOf(db);
    this.reader = reader;
  }

  /** The lookup's SQL, compiled once per number of digests (one per keyring version). */
  private readonly compiledLookups = new Map<number, { sql: string; parameters: readonly unknown[]; slots: number[] }>();

  /** The token with one of these digests and its owner's current access, in one query. */
  async findTokenForVerification(digests: readonly string[]): Promise<TokenForVerification | null> {
    const unique = uniqueIds(digests);
    if (unique.length === 0) return null;
    // Building and compiling this join costs more than running it: do it once,
    // with placeholder digests, and bind the real ones on every miss.
    let compiled = this.compiledLookups.get(unique.length);
    if (!compiled) {
      const placeholders = unique.map((_, index) => `\u0000digest-${index}`);
      const query = this.lookupQuery(placeholders).compile();
      compiled = { sql: query.sql, parameters: query.parameters, slots: query.parameters.map((value) => placeholders.indexOf(value as string)) };
      this.compiledLookups.set(unique.length, compiled);
    }
    const parameters = compiled.parameters.map((value, index) => {
      const slot = compiled.slots[index]!;
      return slot >= 0 ? unique[slot] : value;
    });
    const row = this.reader
      ? (this.reader.prepare(compiled.sql).all(parameters)[0] as LookupRow | undefined)
      : (await this.db.executeQuery<LookupRow>(CompiledQuery.raw(compiled.sql, parameters))).rows[0];
    if (!row) return null;
    const read = this.capabilities.readTimestamp;
    const token = tokenFromRow(row as unknown as TokenRow, parseJsonArray(row.grants), read);
    return { token, owner: this.ownerOf(token, row, read) };
  }

  private lookupQuery(digests: readonly string[]) {
    const jsonArrayFrom = this.capabilities.name === 'postgres' ? postgresJsonArrayFrom : sqliteJsonArrayFrom;
    return this.db
      .selectFrom('tokens')
      .innerJoin('organizations', 'organizations.id', 'tokens.organizationId')
      .leftJoin('memberships', (join) =>
        join
          .on('tokens.ownerType', '=', 'user')
          .onRef('memberships.organizationId', '=', 'tokens.organizationId')
          .onRef('memberships.userId', '=', 'tokens.ownerId'),
      )
      .leftJoin('users', (join) => join.on('tokens.ownerType', '=', 'user').onRef('users.id', '=', 'tokens.ownerId'))
      .leftJoin('apiClients', (join) =>
        join.on('tokens.ownerType', '=', 'client').onRef('apiClients.organizationId', '=', 'tokens.organizationId').onRef('apiClients.id', '=', 'tokens.ownerId'),
      )
      .selectAll('tokens')
      .select((eb) => [
        'organizations.disabledAt as organizationDisabledAt',
        'memberships.role as memberRole',
        'memberships.allResources as memberAllResources',
        'users.email as userEmail',
        'apiClients.id as clientId',
        'apiClients.deletedAt as clientDeletedAt',
        'apiClients.rateLimit as clientRateLimit',
        jsonArrayFrom(
          eb
            .selectFrom('tokenResources')
            .innerJoin('resources', 'resources.id', 'tokenResources.resourceId')
            .select(['resources.id', 'resources.type', 'resources.name'])
            .whereRef('tokenResources.tokenId', '=', 'tokens.id')
            .orderBy('tokenResources.rank'),
        ).as('grants'),
        jsonArrayFrom(
          eb
            .selectFrom('membershipResources')
            .innerJoin('resources', 'resources.id', 'membershipResources.resourceId')
            .select(['resources.id', 'resources.type', 'resources.name'])
            .whereRef('membershipResources.organizationId', '=', 'tokens.organizationId')
            .whereRef('membershipResources.userId', '=', 'tokens.ownerId')
            .orderBy('resources.id'),
        ).as('memberResources'),
      ])
      .where('tokens.digest', 'in', digests)
      .limit(1);
  }

  private ownerOf(
    token: TokenRecord,
    row: {
      organizationDisabledAt: Date | string | null;
      memberRole: string | null;
      memberAllResources: number | null;
      userEmail: string | null;
      clientId: string | null;
      clientDeletedAt: Date | string | null;
      clientRateLimit: string | null;
      memberResources: unknown;
    },
    read: DialectCapabilities['readTimestamp'],
  ): OwnerSnapshot | null {
    if (readOptionalTimestamp(read, row.organizationDisabledAt)) return null;
    if (token.owner.type === 'user') {
      if (row.memberRole === null) return null;
      const email = row.userEmail;
      if (fromFlag(row.memberAllResources ?? 1)) return { role: roleFromColumn(row.memberRole), resourceIds: 'all', resources: [], email };
      const resources = parseJsonArray(row.memberResources);
      return { role: roleFromColumn(row.memberRole), resourceIds: resources.map((r) => r.id), resources, email };
    }
    if (row.clientId === null || readOptionalTimestamp(read, row.clientDeletedAt)) return null;
    // Service tokens were capped by an admin's rights at creation; the client itself has no role.
    return { role: 'owner', resourceIds: 'all', resources: [], clientRateLimit: fromOptionalJson<RateLimitSetting>(row.clientRateLimit) };
  }

  /** Ids of an organization's resources, for tokens that reach "every resource". */
  async resourceIdsOf(organizationId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('resources').select('id').where('organizationId', '=', organizationId).execute();
    return rows.map((row) => row.id);
  }

  /**
   * Spends `cost` credits atomically and exactly: one conditional update, so
   * concurrent spends (on any replica) can never take the count below zero.
   * A refill due for the current period is applied first, in the same transaction.
   */
  async spendQuota(tokenId: string, cost: number, refill: Refill | null, now: Date): Promise<QuotaSpend | null> {
    return this.db.transaction().execute(async (trx) => {
      if (refill) {
        const periodStart = quotaPeriodStart(refill, now);
        // A token's first period is the one it was created in.
        await trx
          .updateTable('tokens')
          .set({ remaining: refill.amount, quotaPeriodStart: periodStart })
          .where('id', '=', tokenId)
          .where((eb) => eb(eb.fn.coalesce('quotaPeriodStart', 'createdAt'), '<', periodStart))
          .execute();
      }
      const spent = await trx
        .updateTable('tokens')
        .set((eb) => ({ remaining: eb('remaining', '-', cost) }))
        .where('id', '=', tokenId)
        .where('remaining', '>=', cost)
        .returning('remaining')
        .executeTakeFirst();
      if (spent) return { spent: true, remaining: Number(spent.remaining) };
      const row = await trx.selectFrom('tokens').select('remaining').where('id', '=', tokenId).executeTakeFirst();
      if (!row || row.remaining === null) return null;
      return { spent: false, remaining: Number(row.remaining) };
    });
  }

  /**
   * Writes buffered last uses: one `update … from` statement per 1,000
   * tokens, in one transaction, rather than one statement a token. Each
   * statement's uses travel as one JSON parameter (as the usage counters do):
   * the same SQL text every time, and no query nodes per value.
   */
  async writeLastUses(uses: readonly LastUse[]): Promise<void> {
    const latest = new Map<string, LastUse>();
    for (const use of uses) {
      const seen = latest.get(use.tokenId);
      if (!seen || seen.atMs < use.atMs) latest.set(use.tokenId, use);
    }
    if (latest.size === 0) return;
    // Sorted, so replicas flushing together take row locks in the same order.
    const rows = [...latest.values()].sort((a, b) => (a.tokenId < b.tokenId ? -1 : a.tokenId > b.tokenId ? 1 : 0));
    await this.db.transaction().execute(async (trx) => {
      for (let start = 0; start < rows.length; start += LAST_USES_PER_STATEMENT) {
        // SQLite runs each statement on the event loop: requests get a turn between them.
        if (start > 0) await setImmediate();
        const json = JSON.stringify(rows.slice(start, start + LAST_USES_PER_STATEMENT).map((use) => [use.tokenId, new Date(use.atMs).toISOString(), use.ip]));
        const { rows: uses, columns } = this.capabilities.jsonArrayRows(json, ['text', 'timestamp', 'text']);
        const [id, at, ip] = columns as [RawBuilder<string>, RawBuilder<Date>, RawBuilder<string | null>];
        await trx
          .updateTable('tokens')
          .from(trx.selectFrom(uses).select([id.as('id'), at.as('at'), ip.as('ip')]).as('lastUse'))
          .set((eb) => ({ lastUsedAt: eb.ref('lastUse.at'), lastUsedIp: eb.ref('lastUse.ip') }))
          .whereRef('tokens.id', '=', 'lastUse.id')
          // Never move lastUsedAt backwards (another replica may have written a later use).
          .where((eb) => eb.or([eb('tokens.lastUsedAt', 'is', null), eb('tokens.lastUsedAt', '<', eb.ref('lastUse.at'))]))
          .execute();
      }
    });
  }

  /**
   * The keyring's lazy re-hash, also of a key imported as a plain SHA-256 (the
   * result is always an HMAC): only if the token still carries the old digest.
   */
  async rehashToken(tokenId: string, fromDigest: string, digest: string, secretVersion: string): Promise<void> {
    await this.db.updateTable('tokens').set({ digest, secretVersion, hashKind: 'hmac' }).where('id', '=', tokenId).where('digest', '=', fromDigest).execute();
  }
}
