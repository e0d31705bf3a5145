// Issue 8: a bearer token's restrictions only narrow, an admin's disable
// sticks, scope-less tokens are not issued by accident, and rotation shows
// when the old secret stops working.
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectProblem, json, OWNER_EMAIL, ownerToken, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';

const DAY_MS = 86_400_000;
const SELF_SERVICE = ['tokens:read', 'tokens:write', 'scans:read'];

describeEachDialect('token restrictions and rights (issue 8)', (open) => {
  let t: TestApp;
  let owner: string;

  beforeEach(async () => {
    t = await createTestApp(open);
    const management = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read'];
    owner = await ownerToken(t, { scopes: [...management, 'scans:read', 'scans:write'], expiresInDays: 365 });
  });
  afterEach(async () => {
    await t.close();
  });

  function api(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: Record<string, unknown>): Promise<LightMyRequestResponse> {
    return t.app.inject({ method, url: `/api/v1${url}`, headers: bearer(token), ...(payload ? { payload } : {}) });
  }

  const child = (creator: string, payload: Record<string, unknown>) => api('POST', '/tokens', creator, { name: `child-${Math.random().toString(36).slice(2, 8)}`, scopes: ['scans:read'], ...payload });
  const stored = async (id: string) => json(await api('GET', `/tokens/${id}`, owner));
  const tokenCount = async () => (await t.database.db.selectFrom('tokens').select('id').execute()).length;

  describe("a bearer token's IP allowlist", () => {
    it('refuses (403) to let a pinned token PATCH its own allowlist away, and keeps it', async () => {
      const pinned = await passwordToken(t, { scopes: SELF_SERVICE, allowedIps: ['127.0.0.1/32'] });
      const refused = await api('PATCH', `/tokens/${pinned.id}`, pinned.token, { allowedIps: [] });
      expect(expectProblem(refused, 403, 'forbidden').detail).toMatch(/127\.0\.0\.1\/32/);
      expect((await stored(pinned.id)).allowedIps).toEqual(['127.0.0.1/32']);
      expect(await auditActions(t, { action: 'token.updated', targetId: pinned.id })).toHaveLength(0);
    });

    it("gives a child that names no allowlist its creator's", async () => {
      const pinned = await passwordToken(t, { scopes: SELF_SERVICE, allowedIps: ['127.0.0.1/32'] });
      const created = await child(pinned.token, {});
      expect(created.statusCode).toBe(201);
      expect(json(created).allowedIps).toEqual(['127.0.0.1/32']);
    });

    it("refuses (403) a child with no allowlist or one reaching outside its creator's, and issues nothing", async () => {
      const pinned = await passwordToken(t, { scopes: SELF_SERVICE, allowedIps: ['127.0.0.0/8'] });
      const before = await tokenCount();
      for (const allowedIps of [[], ['0.0.0.0/0'], ['127.0.0.1/32', '10.0.0.1']]) {
        expectProblem(await child(pinned.token, { allowedIps }), 403, 'forbidden');
      }
      expect(await tokenCount()).toBe(before);
      const inside = await child(pinned.token, { allowedIps: ['127.0.0.1'] });
      expect(inside.statusCode).toBe(201);
      expect(json(inside).allowedIps).toEqual(['127.0.0.1/32']);
    });

    it('refuses (403) a pinned token with tokens:manage to rotate an unpinned token, and rotates nothing', async () => {
      const pinnedManager = await passwordToken(t, { scopes: [...SELF_SERVICE, 'tokens:manage'], allowedIps: ['127.0.0.1/32'] });
      const open = await passwordToken(t, { scopes: ['scans:read'] });
      expectProblem(await api('POST', `/tokens/${open.id}/rotate`, pinnedManager.token, { gracePeriodSeconds: 0 }), 403, 'forbidden');
      expect(await stored(open.id)).toMatchObject({ status: 'active', graceEndsAt: null });
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(0);
    });

    it('does not bind a person: a console session may lift the allowlist', async () => {
      const pinned = await passwordToken(t, { scopes: SELF_SERVICE, allowedIps: ['127.0.0.1/32'] });
      const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD } });
      const cookie = login.cookies.find((entry) => entry.name === 'keyward_session');
      const lifted = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/tokens/${pinned.id}`,
        headers: { cookie: `keyward_session=${cookie?.value}`, 'x-csrf-token': json(login).csrfToken },
        payload: { allowedIps: [] },
      });
      expect(lifted.statusCode, lifted.body).toBe(200);
      expect((await stored(pinned.id)).allowedIps).toEqual([]);
    });
  });

  describe("a bearer token's expiry", () => {
    it('refuses (403) a child that would outlive a 1-day creator, or never expire', async () => {
      const shortLived = await passwordToken(t, { scopes: SELF_SERVICE, expiresInDays: 1 });
      const refused = expectProblem(await child(shortLived.token, { expiresInDays: 365 }), 403, 'forbidden');
      expect(refused.detail).toMatch(/expires at/);
      await api('PATCH', '/organizations/current', owner, { tokenPolicy: { allowNoExpiry: true } });
      expectProblem(await child(shortLived.token, { expiresInDays: null }), 403, 'forbidden');
    });

    it("caps a child's default lifetime at its creator's expiry", async () => {
      const shortLived = await passwordToken(t, { scopes: SELF_SERVICE, expiresInDays: 1 });
      t.clock.advance(DAY_MS / 2);
      const created = await child(shortLived.token, {});
      expect(created.statusCode).toBe(201);
      expect(json(created).expiresAt).toBe(shortLived.body.expiresAt);
    });

    it('never lets a token renew itself past its own expiry by rotating', async () => {
      const shortLived = await passwordToken(t, { scopes: SELF_SERVICE, expiresInDays: 1 });
      t.clock.advance(DAY_MS / 2);
      const rotated = await api('POST', `/tokens/${shortLived.id}/rotate`, shortLived.token, { gracePeriodSeconds: 0 });
      expect(rotated.statusCode).toBe(201);
      expect(json(rotated).expiresAt).toBe(shortLived.body.expiresAt);
    });
  });

  describe("a bearer token's rate limit and quota", () => {
    it('gives a child that names no rate limit its creator\'s, and refuses (403) none, a higher limit or a shorter window', async () => {
      const limited = await passwordToken(t, { scopes: SELF_SERVICE, rateLimit: { limit: 10, windowSeconds: 60 } });
      const inherited = await child(limited.token, {});
      expect(json(inherited).rateLimit).toEqual({ limit: 10, windowSeconds: 60 });
      for (const rateLimit of [null, { limit: 11, windowSeconds: 60 }, { limit: 10, windowSeconds: 30 }]) {
        expectProblem(await child(limited.token, { rateLimit }), 403, 'forbidden');
      }
      expect((await child(limited.token, { rateLimit: { limit: 5, windowSeconds: 120 } })).statusCode).toBe(201);
    });

    it('refuses (403) to let a rate-limited token lift or raise its own limit', async () => {
      const limited = await passwordToken(t, { scopes: SELF_SERVICE, rateLimit: { limit: 10, windowSeconds: 60 } });
      for (const rateLimit of [null, { limit: 1000, windowSeconds: 60 }]) {
        expectProblem(await api('PATCH', `/tokens/${limited.id}`, limited.token, { rateLimit }), 403, 'forbidden');
      }
      expect((await stored(limited.id)).rateLimit).toEqual({ limit: 10, windowSeconds: 60 });
      const tighter = await api('PATCH', `/tokens/${limited.id}`, limited.token, { rateLimit: { limit: 5, windowSeconds: 60 } });
      expect(json(tighter).rateLimit).toEqual({ limit: 5, windowSeconds: 60 });
    });

    it('refuses (403) a child without a quota, with more credits, or with a refill its creator lacks', async () => {
      const metered = await passwordToken(t, { scopes: SELF_SERVICE, remaining: 100 });
      for (const payload of [{ remaining: null }, { remaining: 101 }, { remaining: 50, refill: { amount: 10, interval: 'daily' } }]) {
        expectProblem(await child(metered.token, payload), 403, 'forbidden');
      }
      expect(json(await child(metered.token, {})).remaining).toBe(100);
      expect(json(await child(metered.token, { remaining: 50 })).remaining).toBe(50);
    });
  });

  describe("an admin's disable", () => {
    let memberTokens: { first: { token: string; id: string }; second: { token: string; id: string } };
    let admin: { token: string; id: string };

    beforeEach(async () => {
      await addMember(t, owner, 'member@example.com', 'member');
      await addMember(t, owner, 'admin@example.com', 'admin');
      memberTokens = {
        first: await passwordToken(t, { name: 'first', scopes: SELF_SERVICE }, 'member@example.com'),
        second: await passwordToken(t, { name: 'second', scopes: SELF_SERVICE }, 'member@example.com'),
      };
      admin = await passwordToken(t, { name: 'admin', scopes: [...SELF_SERVICE, 'tokens:manage'] }, 'admin@example.com');
    });

    it('records who disabled a token and at what level', async () => {
      const disabled = await api('PATCH', `/tokens/${memberTokens.first.id}`, admin.token, { enabled: false });
      expect(json(disabled).status).toBe('disabled');
      const record = await t.context.deps.store.findToken(t.organizationId, memberTokens.first.id);
      expect(record?.disabledBy).toEqual({ type: 'token', id: admin.id, permission: 'admin' });
      const [event] = await auditActions(t, { action: 'token.updated', targetId: memberTokens.first.id });
      expect(event?.details).toMatchObject({ changed: ['enabled'], disabledBy: { type: 'token', id: admin.id, permission: 'admin' } });
    });

    it('refuses (403) the owner re-enabling it from another of their tokens, and it stays disabled', async () => {
      await api('PATCH', `/tokens/${memberTokens.first.id}`, admin.token, { enabled: false });
      const refused = expectProblem(await api('PATCH', `/tokens/${memberTokens.first.id}`, memberTokens.second.token, { enabled: true }), 403, 'forbidden');
      expect(refused.detail).toMatch(/at least admin/);
      expect((await stored(memberTokens.first.id)).status).toBe('disabled');
      expect(await auditActions(t, { action: 'token.updated', targetId: memberTokens.first.id })).toHaveLength(1);
    });

    it('lets someone at the same level re-enable it, and forgets the disabler', async () => {
      await api('PATCH', `/tokens/${memberTokens.first.id}`, admin.token, { enabled: false });
      const enabled = await api('PATCH', `/tokens/${memberTokens.first.id}`, owner, { enabled: true });
      expect(json(enabled).status).toBe('active');
      expect((await t.context.deps.store.findToken(t.organizationId, memberTokens.first.id))?.disabledBy).toBeNull();
    });

    it('lets the owner re-enable a token they disabled themselves', async () => {
      await api('PATCH', `/tokens/${memberTokens.first.id}`, memberTokens.second.token, { enabled: false });
      const enabled = await api('PATCH', `/tokens/${memberTokens.first.id}`, memberTokens.second.token, { enabled: true });
      expect(enabled.statusCode).toBe(200);
      expect(json(enabled).status).toBe('active');
    });

    it('makes a disable stick at the higher level when an admin disables a token its owner already had', async () => {
      await api('PATCH', `/tokens/${memberTokens.first.id}`, memberTokens.second.token, { enabled: false });
      expect((await api('PATCH', `/tokens/${memberTokens.first.id}`, admin.token, { enabled: false })).statusCode).toBe(200);
      expectProblem(await api('PATCH', `/tokens/${memberTokens.first.id}`, memberTokens.second.token, { enabled: true }), 403, 'forbidden');
    });
  });

  describe('management routes and the permission level', () => {
    it("refuses (403 forbidden, naming admin) a viewer-level token holding members:manage to rewrite the token policy, and changes nothing", async () => {
      const viewerLevel = await passwordToken(t, { scopes: ['members:manage'], permission: 'viewer' });
      const refused = expectProblem(await api('PATCH', '/organizations/current', viewerLevel.token, { tokenPolicy: { allowNoExpiry: true, maxLifetimeDays: 3650 } }), 403, 'forbidden');
      expect(refused.detail).toMatch(/admin/);
      expect(json(await api('GET', '/organizations/current', owner)).tokenPolicy).toMatchObject({ allowNoExpiry: false, maxLifetimeDays: 365 });
    });

    it('refuses (403) a viewer-level token on every admin route whose scope it holds', async () => {
      const viewerLevel = await passwordToken(t, { scopes: ['members:manage', 'clients:manage', 'audit:read'], permission: 'viewer' });
      const attempts: Array<['GET' | 'POST', string, Record<string, unknown>?]> = [
        ['GET', '/members'],
        ['POST', '/members', { email: 'x@example.com', role: 'viewer', password: PASSWORD }],
        ['POST', '/resources', { type: 'site', name: 'lab' }],
        ['POST', '/organizations', { name: 'Other', slug: 'other' }],
        ['GET', '/clients'],
        ['POST', '/clients', { name: 'customer' }],
        ['GET', '/audit'],
      ];
      for (const [method, url, payload] of attempts) {
        expectProblem(await api(method, url, viewerLevel.token, payload), 403, 'forbidden');
      }
      expect(await auditActions(t, { action: 'member.added' })).toHaveLength(0);
    });

    it("does not let tokens:manage held at viewer level reach other people's tokens", async () => {
      const someone = await passwordToken(t, { scopes: ['scans:read'] });
      const viewerLevel = await passwordToken(t, { scopes: ['tokens:write', 'tokens:manage'], permission: 'viewer' }, OWNER_EMAIL);
      await addMember(t, owner, 'other@example.com', 'member');
      const others = await passwordToken(t, { scopes: ['scans:read'] }, 'other@example.com');
      expectProblem(await api('DELETE', `/tokens/${others.id}`, viewerLevel.token), 404, 'not_found');
      expectProblem(await api('GET', '/tokens?all=true', viewerLevel.token), 403, 'forbidden');
      expect((await stored(others.id)).status).toBe('active');
      // Its own person's tokens are still its to manage.
      expect((await api('DELETE', `/tokens/${someone.id}`, viewerLevel.token)).statusCode).toBe(204);
    });

    it('documents the minimum level of each management route in the OpenAPI document', async () => {
      const document = json(await t.app.inject({ method: 'GET', url: '/openapi.json' }));
      expect(document.paths['/api/v1/organizations/current'].patch.description).toMatch(/at least the admin permission level/);
      expect(document.paths['/api/v1/tokens'].post.description).toMatch(/at least the viewer permission level/);
    });
  });

  describe('default scopes', () => {
    it("answers 400 validation_failed naming scopes when the caller holds none of the default preset's scopes, and issues nothing", async () => {
      const writeOnly = await passwordToken(t, { scopes: ['tokens:write'] });
      const before = await tokenCount();
      const refused = expectProblem(await api('POST', '/tokens', writeOnly.token, { name: 'no scopes' }), 400, 'validation_failed');
      expect(refused.errors).toEqual([expect.objectContaining({ field: 'scopes' })]);
      expect(await tokenCount()).toBe(before);
    });
  });

  describe('rotation grace period in the token view', () => {
    it('shows when the old secret stops working, and no expiry past it', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'], expiresInDays: 30 });
      expect(old.body.graceEndsAt).toBeNull();
      const rotated = await api('POST', `/tokens/${old.id}/rotate`, owner, { gracePeriodSeconds: 3600 });
      expect(json(rotated).graceEndsAt).toBeNull();
      const graceEnd = new Date(t.clock.now().getTime() + 3600_000).toISOString();
      expect(await stored(old.id)).toMatchObject({ status: 'active', graceEndsAt: graceEnd, expiresAt: graceEnd });
      t.clock.advance(3600_000);
      expect(await stored(old.id)).toMatchObject({ status: 'revoked', graceEndsAt: graceEnd });
    });
  });

  describe('service tokens', () => {
    it('default to the least permission level their scopes need, not owner', async () => {
      const client = json(await api('POST', '/clients', owner, { name: 'customer' }));
      const issue = async (scopes: string[]) => json(await api('POST', `/clients/${client.id}/tokens`, owner, { name: scopes.join(' ').replace(/:/g, '-'), scopes })).permission;
      expect(await issue(['scans:read'])).toBe('viewer');
      expect(await issue(['scans:read', 'scans:write'])).toBe('member');
      expect(await issue(['audit:read'])).toBe('admin');
      const explicit = await api('POST', `/clients/${client.id}/tokens`, owner, { name: 'explicit', scopes: ['scans:read'], permission: 'admin' });
      expect(json(explicit).permission).toBe('admin');
    });
  });

  describe('a refusal to grant a scope', () => {
    it("says which scope the token lacks when the person behind it could grant it", async () => {
      const narrow = await passwordToken(t, { scopes: ['tokens:write'] });
      const refused = expectProblem(await child(narrow.token, { scopes: ['scans:write'] }), 403, 'forbidden');
      expect(refused.detail).toMatch(/^Your token does not hold scans:write/);
    });

    it('still says "above your own rights" when the person could not grant it either', async () => {
      await addMember(t, owner, 'member@example.com', 'member');
      const member = await passwordToken(t, { scopes: ['tokens:write'] }, 'member@example.com');
      const refused = expectProblem(await child(member.token, { scopes: ['clearances:write'] }), 403, 'forbidden');
      expect(refused.detail).toMatch(/above your own rights/);
    });
  });
});
