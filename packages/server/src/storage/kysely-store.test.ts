import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_POLICY, tokenStatus, type AuditEvent, type NewToken, type TokenRecord, type TokenStatus } from '@keyward/core';
import type { Database } from './database.ts';
import { KyselyStore } from './kysely-store.ts';
import { describeEachDialect } from './test-databases.ts';
import { StatementCounter } from '../testing/statement-counter.ts';
import { newTokenFixture } from '../testing/token-fixture.ts';

// Milliseconds on purpose: instants must come back exactly, not truncated.
const T0 = new Date('2025-03-01T10:00:00.123Z');
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);

const ORG = 'org_a';
const OTHER_ORG = 'org_b';
const ALICE = 'usr_alice';
const BOB = 'usr_bob';
const CLIENT = 'cli_ci';

function newToken(id: string, overrides: Partial<NewToken> = {}): NewToken {
  return newTokenFixture(id, { organizationId: ORG, userId: ALICE, createdAt: T0 }, overrides);
}

function auditEvent(id: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id,
    at: T0,
    action: 'token.created',
    actor: { type: 'user', id: ALICE },
    authMethod: 'session',
    organizationId: ORG,
    target: { type: 'token', id: 'tok_1' },
    ip: '203.0.113.7',
    userAgent: 'vitest',
    requestId: 'req_1',
    details: { name: 'ci' },
    ...overrides,
  };
}

describeEachDialect('KyselyStore', (open) => {
  let database: Database;
  let store: KyselyStore;

  async function seed(): Promise<void> {
    for (const [id, slug] of [
      [ORG, 'acme'],
      [OTHER_ORG, 'globex'],
    ] as const) {
      await store.insertOrganization({ id, name: slug.toUpperCase(), slug, tokenPolicy: { ...DEFAULT_TOKEN_POLICY }, disabledAt: null, createdAt: T0 });
    }
    await store.insertUser({ id: ALICE, email: 'alice@example.com', createdAt: T0 }, 'hash-a');
    await store.insertUser({ id: BOB, email: 'bob@example.com', createdAt: at(1) }, null);
    await store.insertMembership({ organizationId: ORG, userId: ALICE, role: 'owner', resourceIds: 'all', createdAt: T0 });
    for (const [id, name, minute] of [
      ['res_1', 'api', 1],
      ['res_2', 'web', 2],
      ['res_3', 'db', 3],
    ] as const) {
      await store.insertResource({ id, organizationId: ORG, type: 'service', name, createdAt: at(minute) });
    }
    await store.insertResource({ id: 'res_other', organizationId: OTHER_ORG, type: 'service', name: 'api', createdAt: T0 });
    await store.insertClient({ id: CLIENT, organizationId: ORG, name: 'ci', description: 'builds', createdAt: T0, deletedAt: null, rateLimit: null });
  }

  beforeEach(async () => {
    database = await open();
    store = new KyselyStore(database.db);
    await seed();
  });

  afterEach(async () => {
    await database.close();
  });

  async function rowCount(table: 'tokens' | 'tokenResources' | 'membershipResources' | 'auditEvents' | 'organizations'): Promise<number> {
    const row = await database.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('count'))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  describe('users', () => {
    it('counts users and finds them by id and by email, with the password hash', async () => {
      expect(await store.countUsers()).toBe(2);
      expect(await store.findUserById(BOB)).toEqual({ id: BOB, email: 'bob@example.com', createdAt: at(1) });
      expect(await store.findUserByEmail('alice@example.com')).toEqual({ user: { id: ALICE, email: 'alice@example.com', createdAt: T0 }, passwordHash: 'hash-a' });
      expect((await store.findUserByEmail('bob@example.com'))?.passwordHash).toBeNull();
      expect(await store.findUserById('usr_nobody')).toBeNull();
      expect(await store.findUserByEmail('nobody@example.com')).toBeNull();
    });

    it('refuses a second user with the same email, as a unique violation', async () => {
      const error = await store.insertUser({ id: 'usr_copy', email: 'alice@example.com', createdAt: T0 }, null).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Error);
      expect(database.capabilities.isUniqueViolation(error)).toBe(true);
      expect(database.capabilities.isUniqueViolation(new Error('other'))).toBe(false);
    });

    it('consumes an unexpired invitation exactly once', async () => {
      await store.setUserInvite(BOB, 'invite-digest', at(60));
      expect(await store.consumeInvite('wrong-digest', at(1))).toBeNull();
      expect(await store.consumeInvite('invite-digest', at(1))).toEqual({ id: BOB, email: 'bob@example.com', createdAt: at(1) });
      expect(await store.consumeInvite('invite-digest', at(1))).toBeNull();
    });

    it('does not consume an invitation at or after its expiry', async () => {
      await store.setUserInvite(BOB, 'invite-digest', at(60));
      expect(await store.consumeInvite('invite-digest', at(60))).toBeNull();
      expect(await store.consumeInvite('invite-digest', at(61))).toBeNull();
      expect(await store.consumeInvite('invite-digest', at(59))).not.toBeNull();
    });

    it('sets a password and clears the pending invitation', async () => {
      await store.setUserInvite(BOB, 'invite-digest', at(60));
      await store.setUserPassword(BOB, 'hash-b');
      expect((await store.findUserByEmail('bob@example.com'))?.passwordHash).toBe('hash-b');
      expect(await store.consumeInvite('invite-digest', at(1))).toBeNull();
    });
  });

  describe('organizations', () => {
    it('finds an organization by id and by slug, token policy and instants intact', async () => {
      const org = { id: 'org_c', name: 'Initech', slug: 'initech', tokenPolicy: { maxLifetimeDays: 30, allowNoExpiry: true, requireIpAllowlist: true, revokeUnusedAfterDays: 90, retentionDays: 365 }, disabledAt: at(5), createdAt: at(2) };
      await store.insertOrganization(org);
      const found = await store.findOrganization('org_c');
      expect(found).toEqual(org);
      expect(found?.createdAt).toBeInstanceOf(Date);
      expect(await store.findOrganizationBySlug('initech')).toEqual(org);
      expect(await store.findOrganization('org_missing')).toBeNull();
      expect(await store.findOrganizationBySlug('missing')).toBeNull();
    });

    it('updates the name and the token policy', async () => {
      await store.updateOrganization(ORG, { name: 'Acme Inc.' });
      await store.updateOrganization(ORG, { tokenPolicy: { maxLifetimeDays: 90, allowNoExpiry: true, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: 30 } });
      await store.updateOrganization(ORG, {});
      expect(await store.findOrganization(ORG)).toMatchObject({ name: 'Acme Inc.', slug: 'acme', tokenPolicy: { maxLifetimeDays: 90, allowNoExpiry: true, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: 30 } });
      expect((await store.findOrganization(OTHER_ORG))?.name).toBe('GLOBEX');
    });
  });

  describe('memberships', () => {
    it("lists a user's memberships oldest first, with their organizations and resource limits", async () => {
      await store.insertMembership({ organizationId: OTHER_ORG, userId: ALICE, role: 'viewer', resourceIds: ['res_other'], createdAt: at(10) });
      const memberships = await store.listMembershipsOfUser(ALICE);
      expect(memberships.map((m) => [m.organizationId, m.role, m.resourceIds])).toEqual([
        [ORG, 'owner', 'all'],
        [OTHER_ORG, 'viewer', ['res_other']],
      ]);
      expect(memberships[0]?.organization).toEqual(await store.findOrganization(ORG));
      expect(memberships[1]?.createdAt).toEqual(at(10));
      expect(await store.listMembershipsOfUser('usr_nobody')).toEqual([]);
    });

    it('finds a membership with all resources or with its limited list', async () => {
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_2', 'res_1'], createdAt: at(1) });
      expect(await store.findMembership(ORG, ALICE)).toEqual({ organizationId: ORG, userId: ALICE, role: 'owner', resourceIds: 'all', createdAt: T0 });
      expect((await store.findMembership(ORG, BOB))?.resourceIds).toEqual(['res_1', 'res_2']);
      expect(await store.findMembership(OTHER_ORG, BOB)).toBeNull();
    });

    it('changes the role and replaces, widens or narrows the resource list', async () => {
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_1'], createdAt: at(1) });
      await store.updateMembership(ORG, BOB, { role: 'admin' });
      expect(await store.findMembership(ORG, BOB)).toMatchObject({ role: 'admin', resourceIds: ['res_1'] });

      await store.updateMembership(ORG, BOB, { resourceIds: ['res_2', 'res_3'] });
      expect((await store.findMembership(ORG, BOB))?.resourceIds).toEqual(['res_2', 'res_3']);

      await store.updateMembership(ORG, BOB, { resourceIds: 'all' });
      expect((await store.findMembership(ORG, BOB))?.resourceIds).toBe('all');
      expect(await rowCount('membershipResources')).toBe(0);

      await store.updateMembership(ORG, BOB, { resourceIds: [] });
      expect((await store.findMembership(ORG, BOB))?.resourceIds).toEqual([]);
      expect((await store.findMembership(ORG, BOB))?.role).toBe('admin');
    });

    it('deletes a membership together with its resource limits', async () => {
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_1', 'res_2'], createdAt: at(1) });
      await store.deleteMembership(ORG, BOB);
      expect(await store.findMembership(ORG, BOB)).toBeNull();
      expect(await rowCount('membershipResources')).toBe(0);
      expect(await store.findMembership(ORG, ALICE)).not.toBeNull();
    });

    it('counts the owners of one organization', async () => {
      expect(await store.countOwners(ORG)).toBe(1);
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'owner', resourceIds: 'all', createdAt: at(1) });
      await store.insertMembership({ organizationId: OTHER_ORG, userId: BOB, role: 'owner', resourceIds: 'all', createdAt: at(1) });
      expect(await store.countOwners(ORG)).toBe(2);
      await store.updateMembership(ORG, BOB, { role: 'admin' });
      expect(await store.countOwners(ORG)).toBe(1);
      expect(await store.countOwners('org_missing')).toBe(0);
    });

    it('lists members newest first with email, password flag and limits, page by page', async () => {
      const carol = 'usr_carol';
      await store.insertUser({ id: carol, email: 'carol@example.com', createdAt: T0 }, 'hash-c');
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_3'], createdAt: at(5) });
      // Same instant as Bob: the user id breaks the tie.
      await store.insertMembership({ organizationId: ORG, userId: carol, role: 'viewer', resourceIds: 'all', createdAt: at(5) });

      const first = await store.listMembers(ORG, { limit: 2 });
      expect(first.map((m) => m.userId)).toEqual([carol, BOB]);
      expect(first[1]).toEqual({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_3'], createdAt: at(5), email: 'bob@example.com', hasPassword: false });
      expect(first[0]?.hasPassword).toBe(true);

      const second = await store.listMembers(ORG, { limit: 2, after: { at: at(5), id: BOB } });
      expect(second.map((m) => m.userId)).toEqual([ALICE]);
      expect(second[0]).toMatchObject({ email: 'alice@example.com', hasPassword: true, resourceIds: 'all' });
      expect(await store.listMembers(ORG, { limit: 2, after: { at: T0, id: ALICE } })).toEqual([]);
      expect(await store.listMembers(OTHER_ORG, { limit: 10 })).toEqual([]);
    });
  });

  describe('resources', () => {
    it('finds resources by id, by name and by a list of ids, only in their organization', async () => {
      const expected = { id: 'res_2', organizationId: ORG, type: 'service', name: 'web', createdAt: at(2) };
      expect(await store.findResource(ORG, 'res_2')).toEqual(expected);
      expect(await store.findResource(OTHER_ORG, 'res_2')).toBeNull();
      expect(await store.findResourceByName(ORG, 'service', 'web')).toEqual(expected);
      expect(await store.findResourceByName(ORG, 'database', 'web')).toBeNull();
      const found = await store.findResourcesByIds(ORG, ['res_1', 'res_2', 'res_other', 'res_missing', 'res_1']);
      expect(found.map((r) => r.id).sort()).toEqual(['res_1', 'res_2']);
      expect(await store.findResourcesByIds(ORG, [])).toEqual([]);
    });

    it('refuses two resources of one type and name in an organization', async () => {
      const error = await store.insertResource({ id: 'res_dup', organizationId: ORG, type: 'service', name: 'api', createdAt: T0 }).catch((caught: unknown) => caught);
      expect(database.capabilities.isUniqueViolation(error)).toBe(true);
      await store.insertResource({ id: 'res_db', organizationId: ORG, type: 'database', name: 'api', createdAt: T0 });
    });

    it('lists resources newest first, page by page', async () => {
      const first = await store.listResources(ORG, { limit: 2 });
      expect(first.map((r) => r.id)).toEqual(['res_3', 'res_2']);
      const second = await store.listResources(ORG, { limit: 2, after: { at: at(2), id: 'res_2' } });
      expect(second.map((r) => r.id)).toEqual(['res_1']);
    });

    it('deletes a resource from every token grant and membership limit, keeping the other grants in rank order', async () => {
      await store.insertToken(newToken('tok_1', { resourceIds: ['res_3', 'res_2', 'res_1'], resourcesLimited: true }));
      await store.insertMembership({ organizationId: ORG, userId: BOB, role: 'member', resourceIds: ['res_2', 'res_1'], createdAt: at(1) });
      await store.deleteResource(ORG, 'res_2');
      expect(await store.findResource(ORG, 'res_2')).toBeNull();
      expect((await store.findToken(ORG, 'tok_1'))?.resources.map((r) => r.id)).toEqual(['res_3', 'res_1']);
      expect((await store.findMembership(ORG, BOB))?.resourceIds).toEqual(['res_1']);
    });

    it('does not delete another organization’s resource', async () => {
      await store.deleteResource(ORG, 'res_other');
      expect(await store.findResource(OTHER_ORG, 'res_other')).not.toBeNull();
    });
  });

  describe('API clients', () => {
    it('finds, updates and soft-deletes a client', async () => {
      expect(await store.findClient(ORG, CLIENT)).toEqual({ id: CLIENT, organizationId: ORG, name: 'ci', description: 'builds', createdAt: T0, deletedAt: null, rateLimit: null });
      expect(await store.findClient(OTHER_ORG, CLIENT)).toBeNull();
      await store.updateClient(ORG, CLIENT, { name: 'deploy', description: null });
      expect(await store.findClientByName(ORG, 'deploy')).toMatchObject({ id: CLIENT, description: null });
      await store.updateClient(ORG, CLIENT, {});
      await store.markClientDeleted(ORG, CLIENT, at(3));
      expect((await store.findClient(ORG, CLIENT))?.deletedAt).toEqual(at(3));
      // Deleting twice keeps the first instant.
      await store.markClientDeleted(ORG, CLIENT, at(9));
      expect((await store.findClient(ORG, CLIENT))?.deletedAt).toEqual(at(3));
    });

    it("frees a deleted client's name and leaves it out of the list", async () => {
      await store.insertClient({ id: 'cli_2', organizationId: ORG, name: 'nightly', description: null, createdAt: at(1), deletedAt: null, rateLimit: null });
      await store.insertClient({ id: 'cli_3', organizationId: ORG, name: 'release', description: null, createdAt: at(2), deletedAt: null, rateLimit: null });
      await store.markClientDeleted(ORG, 'cli_2', at(3));
      expect(await store.findClientByName(ORG, 'nightly')).toBeNull();
      expect((await store.listClients(ORG, { limit: 10 })).map((c) => c.id)).toEqual(['cli_3', CLIENT]);
      expect((await store.listClients(ORG, { limit: 1, after: { at: at(2), id: 'cli_3' } })).map((c) => c.id)).toEqual([CLIENT]);
    });
  });

  describe('tokens', () => {
    it('round-trips every field, with grants in rank order', async () => {
      const token = newToken('tok_1', {
        kind: 'client',
        owner: { type: 'client', id: CLIENT },
        scopes: ['tokens:read', 'deploy:*'],
        permission: 'admin',
        resourceIds: ['res_3', 'res_1', 'res_2'],
        resourcesLimited: true,
        expiresAt: at(60 * 24),
        disabledAt: at(2),
        disabledBy: { type: 'token', id: 'tok_admin', permission: 'admin' },
        allowedIps: ['10.0.0.0/8', '2001:db8::/32'],
        rateLimit: { limit: 100, windowSeconds: 60 },
        metadata: { team: 'platform', nested: { n: 1, list: [true, null] } },
        remaining: 2 ** 40,
        refill: { amount: 1000, interval: 'monthly' },
        lineageId: 'lin_1',
        rotatedFrom: 'tok_0',
      });
      await store.insertToken(token);
      const { resourceIds: _ids, ...fields } = token;
      const expected: TokenRecord = {
        ...fields,
        resources: [
          { id: 'res_3', type: 'service', name: 'db' },
          { id: 'res_1', type: 'service', name: 'api' },
          { id: 'res_2', type: 'service', name: 'web' },
        ],
        lastUsedAt: null,
        lastUsedIp: null,
      };
      const found = await store.findToken(ORG, 'tok_1');
      expect(found).toEqual(expected);
      expect(found?.expiresAt).toBeInstanceOf(Date);
      expect(found?.createdAt.getTime()).toBe(T0.getTime());
      expect(await store.findToken(OTHER_ORG, 'tok_1')).toBeNull();
      expect(await store.findToken(ORG, 'tok_missing')).toBeNull();
    });

    it('ignores the read-only fields of a whole record passed in, as rotation does', async () => {
      await store.insertToken({ ...newToken('tok_1'), resources: [{ id: 'res_1', type: 'service', name: 'api' }], lastUsedAt: at(1), lastUsedIp: '192.0.2.1' } as NewToken);
      expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ resources: [], lastUsedAt: null, lastUsedIp: null });
    });

    it('refuses a second token with the same digest', async () => {
      await store.insertToken(newToken('tok_1', { digest: 'same' }));
      const error = await store.insertToken(newToken('tok_2', { digest: 'same' })).catch((caught: unknown) => caught);
      expect(database.capabilities.isUniqueViolation(error)).toBe(true);
    });

    it('writes a token and its grants atomically', async () => {
      const error = await store.insertToken(newToken('tok_1', { resourceIds: ['res_1', 'res_missing'] })).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Error);
      expect(await store.findToken(ORG, 'tok_1')).toBeNull();
      expect(await rowCount('tokenResources')).toBe(0);
    });

    it('finds a token by any of several digests with one query for the token and one for its grants', async () => {
      await store.insertToken(newToken('tok_1', { digest: 'digest-v2', resourceIds: ['res_2'] }));
      await store.insertToken(newToken('tok_2', { digest: 'digest-other' }));
      const counter = new StatementCounter();
      const counted = new KyselyStore(database.db.withPlugin(counter));
      const found = await counted.findTokenByDigests(['digest-v1', 'digest-v2']);
      expect(found?.id).toBe('tok_1');
      expect(found?.resources).toEqual([{ id: 'res_2', type: 'service', name: 'web' }]);
      expect(counter.count).toBe(2);
      expect(await store.findTokenByDigests(['digest-v0'])).toBeNull();
      expect(await store.findTokenByDigests([])).toBeNull();
    });

    describe('listing', () => {
      const now = at(100);
      // One token for every way to reach each status, all created at distinct instants.
      const cases: Array<[string, Partial<NewToken>]> = [
        ['active_plain', {}],
        ['active_future_expiry', { expiresAt: at(200) }],
        ['active_in_grace', { rotatedAt: at(90), graceUntil: at(110) }],
        ['expired', { expiresAt: at(50) }],
        ['expired_at_now', { expiresAt: now }],
        ['expired_and_disabled', { expiresAt: at(50), disabledAt: at(10) }],
        ['disabled', { disabledAt: at(10) }],
        ['disabled_in_grace', { disabledAt: at(10), rotatedAt: at(90), graceUntil: at(110) }],
        ['revoked', { revokedAt: at(20), revokedReason: 'revoked' }],
        ['revoked_and_expired', { revokedAt: at(20), expiresAt: at(50) }],
        ['rotated_past_grace', { rotatedAt: at(60), graceUntil: at(70) }],
        ['rotated_grace_ends_now', { rotatedAt: at(60), graceUntil: now }],
        ['rotated_without_grace', { rotatedAt: at(60), graceUntil: null, expiresAt: at(50) }],
      ];

      async function insertCases(): Promise<TokenRecord[]> {
        for (const [index, [id, overrides]] of cases.entries()) await store.insertToken(newToken(`tok_${id}`, { createdAt: at(index), ...overrides }));
        return store.listTokens({ organizationId: ORG, now, limit: 100 });
      }

      it('filters each status in SQL exactly as tokenStatus() classifies the tokens', async () => {
        const all = await insertCases();
        expect(all).toHaveLength(cases.length);
        for (const status of ['active', 'expired', 'disabled', 'revoked'] satisfies TokenStatus[]) {
          const listed = await store.listTokens({ organizationId: ORG, now, status, limit: 100 });
          const expected = all.filter((token) => tokenStatus(token, now) === status).map((token) => token.id);
          expect(listed.map((token) => token.id), status).toEqual(expected);
          expect(expected.length, status).toBeGreaterThan(0);
        }
      });

      it('names the status each token case was written for', async () => {
        const all = await insertCases();
        const byId = new Map(all.map((token) => [token.id, tokenStatus(token, now)]));
        expect(byId.get('tok_active_in_grace')).toBe('active');
        expect(byId.get('tok_expired_at_now')).toBe('expired');
        expect(byId.get('tok_disabled_in_grace')).toBe('disabled');
        expect(byId.get('tok_rotated_grace_ends_now')).toBe('revoked');
        expect(byId.get('tok_rotated_without_grace')).toBe('revoked');
      });

      it('filters by owning user, by client and by kind, within the organization', async () => {
        await store.insertToken(newToken('tok_alice'));
        await store.insertToken(newToken('tok_bob', { owner: { type: 'user', id: BOB } }));
        await store.insertToken(newToken('tok_ci', { kind: 'client', owner: { type: 'client', id: CLIENT } }));
        // A client whose id equals a user id must not match the user filter.
        await store.insertToken(newToken('tok_client_named_alice', { kind: 'client', owner: { type: 'client', id: ALICE } }));
        await store.insertToken(newToken('tok_elsewhere', { organizationId: OTHER_ORG }));
        const ids = async (filter: Partial<Parameters<KyselyStore['listTokens']>[0]>) =>
          (await store.listTokens({ organizationId: ORG, now: T0, limit: 100, ...filter })).map((token) => token.id).sort();
        expect(await ids({ ownerUserId: ALICE })).toEqual(['tok_alice']);
        expect(await ids({ clientId: CLIENT })).toEqual(['tok_ci']);
        expect(await ids({ kind: 'client' })).toEqual(['tok_ci', 'tok_client_named_alice']);
        expect(await ids({ kind: 'personal' })).toEqual(['tok_alice', 'tok_bob']);
        expect(await ids({ clientId: CLIENT, kind: 'personal' })).toEqual([]);
        expect(await ids({})).toHaveLength(4);
      });

      it('pages newest first, breaking ties by id, each row exactly once', async () => {
        // Three tokens share one instant: the id orders them.
        const created = ['tok_a', 'tok_b', 'tok_c', 'tok_d', 'tok_e'];
        const instants = [at(1), at(2), at(2), at(2), at(3)];
        for (const [index, id] of created.entries()) await store.insertToken(newToken(id, { createdAt: instants[index] as Date }));
        const seen: string[] = [];
        let after: { at: Date; id: string } | undefined;
        for (;;) {
          const page = await store.listTokens({ organizationId: ORG, now: T0, limit: 2, after });
          expect(page.length).toBeLessThanOrEqual(2);
          seen.push(...page.map((token) => token.id));
          const last = page.at(-1);
          if (page.length < 2 || !last) break;
          after = { at: last.createdAt, id: last.id };
        }
        expect(seen).toEqual(['tok_e', 'tok_d', 'tok_c', 'tok_b', 'tok_a']);
        expect((await store.listTokens({ organizationId: ORG, now: T0, limit: 10, after: { at: at(2), id: 'tok_c' } })).map((t) => t.id)).toEqual(['tok_b', 'tok_a']);
      });

      it('loads the grants of a whole page with one query', async () => {
        for (const index of [1, 2, 3, 4]) await store.insertToken(newToken(`tok_${index}`, { createdAt: at(index), resourceIds: index % 2 ? ['res_2', 'res_1'] : ['res_3'] }));
        const counter = new StatementCounter();
        const page = await new KyselyStore(database.db.withPlugin(counter)).listTokens({ organizationId: ORG, now: T0, limit: 10 });
        expect(counter.count).toBe(2);
        expect(page.map((token) => [token.id, token.resources.map((r) => r.id)])).toEqual([
          ['tok_4', ['res_3']],
          ['tok_3', ['res_2', 'res_1']],
          ['tok_2', ['res_3']],
          ['tok_1', ['res_2', 'res_1']],
        ]);
      });
    });

    it('finds a live token by owner and name, never a revoked, rotated or expired one', async () => {
      const now = at(100);
      const owner = { type: 'user', id: ALICE } as const;
      await store.insertToken(newToken('tok_revoked', { name: 'deploy', revokedAt: at(1) }));
      await store.insertToken(newToken('tok_rotated', { name: 'deploy', rotatedAt: at(90), graceUntil: at(200) }));
      await store.insertToken(newToken('tok_expired', { name: 'deploy', expiresAt: now }));
      await store.insertToken(newToken('tok_bob', { name: 'deploy', owner: { type: 'user', id: BOB } }));
      await store.insertToken(newToken('tok_elsewhere', { name: 'deploy', organizationId: OTHER_ORG }));
      expect(await store.findLiveTokenByName(ORG, owner, 'deploy', now)).toBeNull();

      await store.insertToken(newToken('tok_live', { name: 'deploy', expiresAt: at(101), disabledAt: at(5), resourceIds: ['res_1'] }));
      const live = await store.findLiveTokenByName(ORG, owner, 'deploy', now);
      expect(live?.id).toBe('tok_live');
      expect(live?.resources.map((r) => r.id)).toEqual(['res_1']);
      expect(await store.findLiveTokenByName(ORG, { type: 'client', id: ALICE }, 'deploy', now)).toBeNull();
      expect(await store.findLiveTokenByName(ORG, owner, 'other', now)).toBeNull();
    });

    it('updates settings and replaces the ranked grants', async () => {
      await store.insertToken(newToken('tok_1', { resourceIds: ['res_1', 'res_2'], disabledAt: at(1) }));
      await store.updateToken('tok_1', {
        name: 'renamed',
        scopes: ['a:read', 'b:write'],
        resourceIds: ['res_3', 'res_1'],
        resourcesLimited: true,
        disabledAt: null,
        allowedIps: ['192.0.2.0/24'],
        rateLimit: { limit: 5, windowSeconds: 1 },
        metadata: { ticket: 'OPS-1' },
      });
      expect(await store.findToken(ORG, 'tok_1')).toMatchObject({
        name: 'renamed',
        scopes: ['a:read', 'b:write'],
        resources: [
          { id: 'res_3', type: 'service', name: 'db' },
          { id: 'res_1', type: 'service', name: 'api' },
        ],
        resourcesLimited: true,
        disabledAt: null,
        allowedIps: ['192.0.2.0/24'],
        rateLimit: { limit: 5, windowSeconds: 1 },
        metadata: { ticket: 'OPS-1' },
      });
      await store.updateToken('tok_1', { disabledAt: at(7), disabledBy: { type: 'user', id: BOB, permission: 'owner' }, rateLimit: null, resourceIds: [] });
      expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ name: 'renamed', disabledAt: at(7), disabledBy: { type: 'user', id: BOB, permission: 'owner' }, rateLimit: null, resources: [] });
      await store.updateToken('tok_1', { disabledAt: null, disabledBy: null });
      expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ disabledAt: null, disabledBy: null });
      await store.updateToken('tok_1', {});
      expect(await rowCount('tokenResources')).toBe(0);
    });

    it('records last use, a new digest and rotation marks', async () => {
      await store.insertToken(newToken('tok_1'));
      await store.touchToken('tok_1', at(5), '198.51.100.4');
      await store.rehashToken('tok_1', 'digest-v2', 'v2');
      await store.markTokenRotated('tok_1', at(6), at(16));
      expect(await store.findTokenByDigests(['digest_tok_1'])).toBeNull();
      expect(await store.findTokenByDigests(['digest-v2'])).toMatchObject({
        id: 'tok_1',
        secretVersion: 'v2',
        lastUsedAt: at(5),
        lastUsedIp: '198.51.100.4',
        rotatedAt: at(6),
        graceUntil: at(16),
      });
      await store.touchToken('tok_1', at(7), null);
      expect((await store.findToken(ORG, 'tok_1'))?.lastUsedIp).toBeNull();
    });

    it('revokes only what is not revoked yet and answers those ids', async () => {
      await store.insertToken(newToken('tok_1'));
      await store.insertToken(newToken('tok_2'));
      await store.insertToken(newToken('tok_3', { revokedAt: at(1), revokedReason: 'earlier' }));
      expect(await store.revokeTokens(['tok_1', 'tok_3', 'tok_missing', 'tok_2'], at(5), 'member_removed')).toEqual(['tok_1', 'tok_2']);
      expect(await store.revokeTokens(['tok_1', 'tok_2'], at(9), 'again')).toEqual([]);
      expect(await store.revokeTokens([], at(9), 'none')).toEqual([]);
      expect(await store.findToken(ORG, 'tok_1')).toMatchObject({ revokedAt: at(5), revokedReason: 'member_removed' });
      expect(await store.findToken(ORG, 'tok_3')).toMatchObject({ revokedAt: at(1), revokedReason: 'earlier' });
    });

    it('finds the unrevoked tokens of a lineage, of a member and of a client', async () => {
      await store.insertToken(newToken('tok_1', { lineageId: 'lin_1', rotatedAt: at(1), graceUntil: at(2) }));
      await store.insertToken(newToken('tok_2', { lineageId: 'lin_1', rotatedFrom: 'tok_1', createdAt: at(1) }));
      await store.insertToken(newToken('tok_3', { lineageId: 'lin_1', revokedAt: at(3) }));
      await store.insertToken(newToken('tok_bob', { owner: { type: 'user', id: BOB } }));
      await store.insertToken(newToken('tok_alice_elsewhere', { organizationId: OTHER_ORG }));
      await store.insertToken(newToken('tok_ci', { kind: 'client', owner: { type: 'client', id: CLIENT } }));
      await store.insertToken(newToken('tok_ci_revoked', { kind: 'client', owner: { type: 'client', id: CLIENT }, revokedAt: at(1) }));

      expect(await store.findUnrevokedTokenIds({ lineageId: 'lin_1' })).toEqual(['tok_1', 'tok_2']);
      expect((await store.findUnrevokedTokenIds({ organizationId: ORG, userId: ALICE })).sort()).toEqual(['tok_1', 'tok_2']);
      expect(await store.findUnrevokedTokenIds({ organizationId: OTHER_ORG, userId: ALICE })).toEqual(['tok_alice_elsewhere']);
      expect(await store.findUnrevokedTokenIds({ organizationId: ORG, clientId: CLIENT })).toEqual(['tok_ci']);
      expect(await store.findUnrevokedTokenIds({ organizationId: ORG, userId: CLIENT })).toEqual([]);
      await expect(store.findUnrevokedTokenIds({ organizationId: ORG })).rejects.toThrow(/lineageId/);
    });
  });

  describe('audit events', () => {
    beforeEach(async () => {
      await store.insertAuditEvent(auditEvent('evt_1', { at: at(1) }));
      await store.insertAuditEvent(auditEvent('evt_2', { at: at(2), action: 'token.revoked', target: { type: 'token', id: 'tok_2' } }));
      await store.insertAuditEvent(auditEvent('evt_3', { at: at(2), actor: { type: 'token', id: 'tok_9' }, authMethod: 'personal_token', target: null }));
      await store.insertAuditEvent(auditEvent('evt_4', { at: at(3), actor: { type: 'system', id: null }, authMethod: 'system', ip: null, userAgent: null, requestId: null }));
      await store.insertAuditEvent(auditEvent('evt_elsewhere', { at: at(2), organizationId: OTHER_ORG }));
      await store.insertAuditEvent(auditEvent('evt_no_org', { at: at(2), organizationId: null }));
    });

    const ids = (events: AuditEvent[]) => events.map((event) => event.id);

    it('round-trips an event', async () => {
      const [event] = await store.listAuditEvents({ organizationId: ORG, limit: 1, after: { at: at(2), id: 'evt_2' } });
      expect(event).toEqual(auditEvent('evt_1', { at: at(1) }));
      const [system] = await store.listAuditEvents({ organizationId: ORG, limit: 1 });
      expect(system).toMatchObject({ id: 'evt_4', actor: { type: 'system', id: null }, target: { type: 'token', id: 'tok_1' }, ip: null });
    });

    it("lists one organization's events newest first, ties by id, page by page", async () => {
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10 }))).toEqual(['evt_4', 'evt_3', 'evt_2', 'evt_1']);
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 2, after: { at: at(2), id: 'evt_3' } }))).toEqual(['evt_2', 'evt_1']);
    });

    it('filters by action, actor, target and a since (inclusive) / until (exclusive) window', async () => {
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10, action: 'token.revoked' }))).toEqual(['evt_2']);
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10, actorId: 'tok_9' }))).toEqual(['evt_3']);
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10, targetId: 'tok_2' }))).toEqual(['evt_2']);
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10, since: at(2), until: at(3) }))).toEqual(['evt_3', 'evt_2']);
      expect(ids(await store.listAuditEvents({ organizationId: ORG, limit: 10, since: at(2), action: 'token.created' }))).toEqual(['evt_4', 'evt_3']);
    });
  });

  describe('sessions', () => {
    it('stores, finds and deletes a session', async () => {
      const session = { id: 'sha256-of-secret', userId: ALICE, csrfDigest: 'csrf', createdAt: T0, expiresAt: at(60 * 12) };
      await store.insertSession(session);
      expect(await store.findSession(session.id)).toEqual(session);
      await store.deleteSession(session.id);
      expect(await store.findSession(session.id)).toBeNull();
    });

    it('deletes only the sessions that have ended', async () => {
      const ended = { id: 'ended', userId: ALICE, csrfDigest: 'c1', createdAt: T0, expiresAt: at(10) };
      const live = { id: 'live', userId: ALICE, csrfDigest: 'c2', createdAt: T0, expiresAt: at(30) };
      await store.insertSession(ended);
      await store.insertSession(live);
      expect(await store.deleteExpiredSessions(at(10))).toBe(1);
      expect(await store.findSession('ended')).toBeNull();
      expect(await store.findSession('live')).toEqual(live);
    });
  });

  describe('transactions', () => {
    it('leaves nothing written when the work throws, and rethrows', async () => {
      const failure = new Error('boom');
      await expect(
        store.transaction(async (tx) => {
          await tx.insertOrganization({ id: 'org_tx', name: 'Tx', slug: 'tx', tokenPolicy: { ...DEFAULT_TOKEN_POLICY, maxLifetimeDays: 1 }, disabledAt: null, createdAt: T0 });
          await tx.insertToken(newToken('tok_tx', { resourceIds: ['res_1'] }));
          await tx.revokeTokens(['tok_tx'], at(1), 'inside');
          await tx.updateMembership(ORG, ALICE, { resourceIds: ['res_1'] });
          await tx.insertAuditEvent(auditEvent('evt_tx'));
          expect(await tx.findToken(ORG, 'tok_tx')).not.toBeNull();
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await store.findOrganization('org_tx')).toBeNull();
      expect(await store.findToken(ORG, 'tok_tx')).toBeNull();
      expect((await store.findMembership(ORG, ALICE))?.resourceIds).toBe('all');
      expect(await rowCount('tokenResources')).toBe(0);
      expect(await rowCount('auditEvents')).toBe(0);
      expect(await rowCount('organizations')).toBe(2);
    });

    it('commits everything together and answers the work’s result', async () => {
      const result = await store.transaction(async (tx) => {
        await tx.insertToken(newToken('tok_tx'));
        await tx.insertAuditEvent(auditEvent('evt_tx'));
        return 'done';
      });
      expect(result).toBe('done');
      expect(await store.findToken(ORG, 'tok_tx')).not.toBeNull();
      expect(await rowCount('auditEvents')).toBe(1);
    });

    it('joins the outer transaction when called inside one', async () => {
      await expect(
        store.transaction(async (tx) => {
          const inner = await tx.transaction(async (nested) => {
            expect(nested).toBe(tx);
            await nested.insertToken(newToken('tok_inner'));
            return 'inner';
          });
          expect(inner).toBe('inner');
          throw new Error('outer fails');
        }),
      ).rejects.toThrow('outer fails');
      expect(await store.findToken(ORG, 'tok_inner')).toBeNull();
    });
  });

  it('stores instants to the millisecond and compares them exactly', async () => {
    const instant = new Date('2031-12-31T23:59:59.999Z');
    await store.insertToken(newToken('tok_1', { createdAt: instant, expiresAt: new Date(instant.getTime() + 1) }));
    const found = await store.findToken(ORG, 'tok_1');
    expect(found?.createdAt).toEqual(instant);
    expect(found?.expiresAt?.toISOString()).toBe('2032-01-01T00:00:00.000Z');
    const { rows } = await sql<{ n: number }>`select count(*) as n from tokens where created_at = ${instant}`.execute(database.db);
    expect(Number(rows[0]?.n)).toBe(1);
  });
});
