import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { auditActions, bearer, createTestApp, expectInvalidToken, json, OWNER_EMAIL, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';

// The manager holds what the tokens it rotates hold: rotation hands those rights to the caller.
const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'members:manage', 'audit:read', 'scans:read', 'reports:read'];
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;


describeEachDialect('token rotation', (open) => {
  let t: TestApp;
  let manager: { token: string; id: string };

  beforeEach(async () => {
    t = await createTestApp(open);
    // A year, so that capping a successor at the caller's own expiry stays out of the way.
    manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES, expiresInDays: 365 });
  });
  afterEach(async () => {
    await t.close();
  });

  function rotate(id: string, payload?: unknown, headers: Record<string, string> = bearer(manager.token)): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: `/api/v1/tokens/${id}/rotate`, headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  }

  function current(token: string): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) });
  }

  async function expectWorks(token: string, id: string): Promise<void> {
    const response = await current(token);
    expect(response.statusCode).toBe(200);
    expect(json(response).id).toBe(id);
  }

  async function rotated(id: string, gracePeriodSeconds = 0): Promise<{ token: string; id: string; body: Record<string, any> }> {
    const response = await rotate(id, { gracePeriodSeconds });
    expect(response.statusCode).toBe(201);
    const body = json(response);
    return { token: body.token, id: body.id, body };
  }

  async function statusOf(id: string): Promise<string> {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: bearer(manager.token) });
    expect(response.statusCode).toBe(200);
    return json(response).status;
  }

  describe('POST /api/v1/tokens/:id/rotate', () => {
    it('issues a new id and secret that copy the settings and link back with rotatedFrom', async () => {
      const resources: string[] = [];
      for (const name of ['net-a', 'net-b']) {
        const response = await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(manager.token), payload: { type: 'network', name } });
        expect(response.statusCode).toBe(201);
        resources.push(json(response).id);
      }
      // The password flow acts with the owner's full rights, so it may grant the demo scopes.
      const { body: old } = await passwordToken(t, {
        name: 'deploy bot',
        scopes: ['scans:read', 'reports:read'],
        resources: [resources[1], resources[0]],
        permission: 'member',
        expiresInDays: 30,
        allowedIps: ['127.0.0.1/32'],
        rateLimit: { limit: 100, windowSeconds: 60 },
        remaining: 500,
        refill: { amount: 500, interval: 'daily' },
        metadata: { team: 'ops' },
      });

      const response = await rotate(old.id, { gracePeriodSeconds: 60 });
      expect(response.statusCode).toBe(201);
      expect(response.headers['cache-control']).toBe('no-store');
      const fresh = json(response);
      expect(fresh.id).not.toBe(old.id);
      expect(fresh.token).toMatch(/^kw_pat_[0-9A-Za-z]{49}$/);
      expect(fresh.token).not.toBe(old.token);
      expect(fresh.hint).toBe(`kw_pat_…${fresh.token.slice(-4)}`);
      expect(fresh.rotatedFrom).toBe(old.id);
      expect(fresh.status).toBe('active');
      for (const field of ['name', 'kind', 'owner', 'organizationId', 'scopes', 'permission', 'resources', 'allowedIps', 'rateLimit', 'remaining', 'refill', 'metadata']) {
        expect(fresh[field], field).toEqual(old[field]);
      }
      expect(fresh.resources.map((resource: { id: string }) => resource.id)).toEqual([resources[1], resources[0]]);

      await expectWorks(fresh.token, fresh.id);
      const stored = await t.context.deps.store.findToken(t.organizationId, fresh.id);
      expect(stored?.lineageId).toBe(old.id);
    });

    it('refuses the old secret at once when the grace period is 0', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const fresh = await rotated(old.id, 0);
      expectInvalidToken(await current(old.token));
      expect(fresh.body.rotatedFrom).toBe(old.id);
    });

    it('defaults the grace period to 0 when the request has no body', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await rotate(old.id);
      expect(response.statusCode).toBe(201);
      expectInvalidToken(await current(old.token));
      const [event] = await auditActions(t, { action: 'token.rotated', targetId: old.id });
      expect(event?.details.gracePeriodSeconds).toBe(0);
    });

    it('keeps the old secret valid until exactly the end of the grace period', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const fresh = await rotated(old.id, 600);

      t.clock.advance(600_000 - 1);
      await expectWorks(old.token, old.id);
      await expectWorks(fresh.token, fresh.id);

      t.clock.advance(1);
      expectInvalidToken(await current(old.token));
    });

    it('never keeps the old secret past its own expiry', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'], expiresInDays: 1 });
      t.clock.advance(23 * HOUR_MS);
      const fresh = await rotated(old.id, 86_400);
      const [event] = await auditActions(t, { action: 'token.rotated', targetId: old.id });
      expect(event?.details.graceUntil).toBe(old.body.expiresAt);

      const untilExpiry = Date.parse(old.body.expiresAt) - t.clock.now().getTime();
      expect(untilExpiry).toBe(HOUR_MS);
      t.clock.advance(untilExpiry - 1);
      await expectWorks(old.token, old.id);

      t.clock.advance(1);
      expectInvalidToken(await current(old.token));
      expect(fresh.body.rotatedFrom).toBe(old.id);
    });

    it('revokes the whole lineage when a rotated-out secret is presented after the grace period', async () => {
      const first = await passwordToken(t, { scopes: ['scans:read'] });
      const second = await rotated(first.id, 60);
      const third = await rotated(second.id, 3_600);
      t.clock.advance(60_000);
      await expectWorks(second.token, second.id);
      await expectWorks(third.token, third.id);

      expectInvalidToken(await current(first.token));
      expectInvalidToken(await current(second.token));
      expectInvalidToken(await current(third.token));
      expectInvalidToken(await current(first.token));

      const events = await auditActions(t, { action: 'token.reuse_detected' });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        actor: { type: 'system', id: null },
        authMethod: 'system',
        organizationId: t.organizationId,
        target: { type: 'token', id: first.id },
        details: { lineageId: first.id, how: 'rotated_out_secret_presented' },
      });
      expect(events[0]?.details.revokedTokenIds).toEqual(expect.arrayContaining([second.id, third.id]));
      expect(await statusOf(third.id)).toBe('revoked');
      expect(await statusOf(manager.id)).toBe('active');
    });

    it('answers 409 and revokes the lineage when an already rotated token is rotated again', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const fresh = await rotated(old.id, 300);

      const again = await rotate(old.id, { gracePeriodSeconds: 300 });
      expect(again.statusCode).toBe(409);
      expect(again.headers['content-type']).toContain('application/problem+json');
      expect(json(again).code).toBe('conflict');

      expectInvalidToken(await current(fresh.token));
      expectInvalidToken(await current(old.token));
      expect(await statusOf(fresh.id)).toBe('revoked');
      const reuse = await auditActions(t, { action: 'token.reuse_detected' });
      expect(reuse).toHaveLength(1);
      expect(reuse[0]).toMatchObject({ actor: { type: 'token', id: manager.id }, authMethod: 'personal_token', target: { type: 'token', id: old.id }, details: { how: 'rotate_again' } });
      expect(reuse[0]?.details.revokedTokenIds).toEqual(expect.arrayContaining([old.id, fresh.id]));
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(1);
    });

    it('lets only one of several concurrent rotations of a token succeed, and treats the others as reuse', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const responses = await Promise.all([1, 2, 3].map(() => rotate(old.id, { gracePeriodSeconds: 300 })));

      expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 409, 409]);
      const winner = json(responses.find((response) => response.statusCode === 201) as LightMyRequestResponse);
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(1);
      expect(await auditActions(t, { action: 'token.reuse_detected' })).not.toHaveLength(0);
      // No successor of the contested token survives.
      expectInvalidToken(await current(winner.token));
      expectInvalidToken(await current(old.token));
      const lineage = await t.context.deps.store.listTokens({ organizationId: t.organizationId, limit: 100, now: t.clock.now() });
      expect(lineage.filter((token) => token.lineageId === old.id && !token.revokedAt)).toEqual([]);
    });

    it("gives the new token the original lifetime counted from now, capped by today's policy", async () => {
      const original = await passwordToken(t, { name: 'monthly', scopes: [], expiresInDays: 30 });
      t.clock.advance(10 * DAY_MS);
      const renewed = await rotated(original.id);
      expect(Date.parse(renewed.body.expiresAt) - t.clock.now().getTime()).toBe(30 * DAY_MS);

      const policy = await t.app.inject({ method: 'PATCH', url: '/api/v1/organizations/current', headers: bearer(manager.token), payload: { tokenPolicy: { maxLifetimeDays: 7 } } });
      expect(policy.statusCode).toBe(200);
      const capped = await rotated(renewed.id);
      expect(Date.parse(capped.body.expiresAt) - t.clock.now().getTime()).toBe(7 * DAY_MS);
    });

    it('refuses (403) to rotate a token holding scopes, permission or resources beyond the caller, and issues nothing', async () => {
      const ownerOnly = await passwordToken(t, { name: 'owner ci', scopes: ['members:manage', 'tokens:write'] });
      const narrow = await passwordToken(t, { name: 'narrow', scopes: ['tokens:read', 'tokens:write', 'tokens:manage'] });
      const refused = await rotate(ownerOnly.id, { gracePeriodSeconds: 0 }, bearer(narrow.token));
      expect(refused.statusCode).toBe(403);
      expect(json(refused).code).toBe('forbidden');
      await expectWorks(ownerOnly.token, ownerOnly.id);
      expect(await auditActions(t, { targetId: ownerOnly.id, action: 'token.rotated' })).toHaveLength(0);
    });

    it('answers 409 when the organization now requires an IP allowlist the token lacks, and rotates once it has one', async () => {
      const old = await passwordToken(t, { name: 'open', scopes: ['scans:read'] });
      const policy = await t.app.inject({ method: 'PATCH', url: '/api/v1/organizations/current', headers: bearer(manager.token), payload: { tokenPolicy: { requireIpAllowlist: true } } });
      expect(policy.statusCode).toBe(200);
      const refused = await rotate(old.id, { gracePeriodSeconds: 0 });
      expect(refused.statusCode).toBe(409);
      await expectWorks(old.token, old.id);
      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${old.id}`, headers: bearer(manager.token), payload: { allowedIps: ['127.0.0.1'] } });
      expect(patched.statusCode).toBe(200);
      expect((await rotate(old.id, { gracePeriodSeconds: 0 })).statusCode).toBe(201);
    });

    it('answers 409 for a revoked token and issues nothing', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const revoked = await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${old.id}`, headers: bearer(manager.token) });
      expect(revoked.statusCode).toBe(204);

      const response = await rotate(old.id, { gracePeriodSeconds: 60 });
      expect(response.statusCode).toBe(409);
      expect(json(response).code).toBe('conflict');
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(0);
    });

    it('answers 409 for an expired token and issues nothing', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'], expiresInDays: 1 });
      t.clock.advance(DAY_MS);

      const response = await rotate(old.id, { gracePeriodSeconds: 60 });
      expect(response.statusCode).toBe(409);
      expect(json(response).code).toBe('conflict');
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(0);
      expect(await auditActions(t, { action: 'token.reuse_detected' })).toHaveLength(0);
    });

    it('answers 404 for an id that does not exist', async () => {
      const response = await rotate('tok_doesnotexist', { gracePeriodSeconds: 0 });
      expect(response.statusCode).toBe(404);
      expect(json(response).code).toBe('not_found');
    });

    it.each([-1, 86_401, 1.5, '60'])('rejects gracePeriodSeconds %j with 400 and leaves the token alone', async (gracePeriodSeconds) => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await rotate(old.id, { gracePeriodSeconds });
      expect(response.statusCode).toBe(400);
      const problem = json(response);
      expect(problem.code).toBe('validation_failed');
      expect(problem.errors.map((error: { field: string }) => error.field)).toContain('gracePeriodSeconds');

      await expectWorks(old.token, old.id);
      expect(await auditActions(t, { action: 'token.rotated' })).toHaveLength(0);
    });

    it('accepts the largest grace period, 86400 seconds', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      await rotated(old.id, 86_400);
      t.clock.advance(86_400_000 - 1);
      await expectWorks(old.token, old.id);
    });

    it('writes exactly one token.rotated event naming the acting token', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const fresh = await rotated(old.id, 120);

      const events = await auditActions(t, { action: 'token.rotated' });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        actor: { type: 'token', id: manager.id },
        authMethod: 'personal_token',
        organizationId: t.organizationId,
        target: { type: 'token', id: old.id },
        details: { newTokenId: fresh.id, gracePeriodSeconds: 120, userId: t.ownerId },
      });
      expect(events[0]?.requestId).toEqual(expect.any(String));
      expect(JSON.stringify(events)).not.toContain(fresh.token);
    });

    it('records the person and the session as actor when rotating from the console', async () => {
      const old = await passwordToken(t, { scopes: ['scans:read'] });
      const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD } });
      expect(login.statusCode).toBe(200);
      const cookie = login.cookies.find((entry) => entry.name === 'keyward_session');
      expect(cookie).toBeDefined();

      const response = await rotate(old.id, { gracePeriodSeconds: 0 }, { cookie: `keyward_session=${cookie?.value}`, 'x-csrf-token': json(login).csrfToken });
      expect(response.statusCode).toBe(201);

      const events = await auditActions(t, { action: 'token.rotated' });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ actor: { type: 'user', id: t.ownerId }, authMethod: 'session', target: { type: 'token', id: old.id }, details: { newTokenId: json(response).id } });
    });
  });
});
