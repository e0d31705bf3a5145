import { generateToken } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectInvalidToken, json, OWNER_EMAIL, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';

const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'members:manage', 'audit:read'];
const DAY_MS = 86_400_000;


describeEachDialect('token revocation', (open) => {
  let t: TestApp;
  let manager: { token: string; id: string };

  beforeEach(async () => {
    t = await createTestApp(open);
    manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
  });
  afterEach(async () => {
    await t.close();
  });

  function revoke(id: string, token = manager.token): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(token) });
  }

  function current(token: string): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) });
  }

  async function listedStatus(id: string): Promise<string | undefined> {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens?all=true&limit=100', headers: bearer(manager.token) });
    expect(response.statusCode).toBe(200);
    return json(response).items.find((item: { id: string }) => item.id === id)?.status;
  }

  /** Every management route a stolen token could try, each refused before it acts. */
  async function expectRefusedEverywhere(token: string, id: string): Promise<void> {
    const attempts = [
      current(token),
      t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) }),
      t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: bearer(token) }),
      t.app.inject({ method: 'POST', url: `/api/v1/tokens/${id}/rotate`, headers: bearer(token), payload: { gracePeriodSeconds: 0 } }),
      t.app.inject({ method: 'DELETE', url: '/api/v1/tokens/current', headers: bearer(token) }),
    ];
    for (const response of await Promise.all(attempts)) expectInvalidToken(response);
  }

  async function signIn(): Promise<Record<string, string>> {
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD } });
    expect(login.statusCode).toBe(200);
    const cookie = login.cookies.find((entry) => entry.name === 'keyward_session');
    return { cookie: `keyward_session=${cookie?.value}`, 'x-csrf-token': json(login).csrfToken };
  }

  describe('DELETE /api/v1/tokens/:id', () => {
    it('answers 204 and the revoked token is refused with invalid_token afterwards', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] });
      expect((await current(target.token)).statusCode).toBe(200);

      const response = await revoke(target.id);
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');

      await expectRefusedEverywhere(target.token, target.id);
      expect(await listedStatus(target.id)).toBe('revoked');
      expect(await listedStatus(manager.id)).toBe('active');
    });

    it('writes one token.revoked event naming the actor', async () => {
      const target = await passwordToken(t, { scopes: ['scans:read'] });
      expect((await revoke(target.id)).statusCode).toBe(204);

      const events = await auditActions(t, { action: 'token.revoked', targetId: target.id });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ actor: { type: 'token', id: manager.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
    });

    it('writes no second event when the token is revoked again', async () => {
      const target = await passwordToken(t, { scopes: ['scans:read'] });
      expect((await revoke(target.id)).statusCode).toBe(204);
      t.clock.advance(60_000);
      expect((await revoke(target.id)).statusCode).toBe(204);

      expect(await auditActions(t, { action: 'token.revoked', targetId: target.id })).toHaveLength(1);
      const stored = await t.context.deps.store.findToken(t.organizationId, target.id);
      // The first revocation's time stands.
      expect(stored?.revokedAt?.toISOString()).toBe(new Date(t.clock.now().getTime() - 60_000).toISOString());
    });

    it("answers a member's attempt on another member's token exactly like a missing id", async () => {
      await addMember(t, manager.token, 'alice@example.com', 'member');
      await addMember(t, manager.token, 'bob@example.com', 'member');
      const alice = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'alice@example.com');
      const bob = await passwordToken(t, { scopes: ['tokens:read'] }, 'bob@example.com');

      const foreign = await revoke(bob.id, alice.token);
      const missing = await revoke('tok_doesnotexist000000', alice.token);
      expect(foreign.statusCode).toBe(404);
      expect(json(foreign).code).toBe('not_found');
      expect(missing.statusCode).toBe(404);
      const { instance: _foreignInstance, ...foreignProblem } = json(foreign);
      const { instance: _missingInstance, ...missingProblem } = json(missing);
      expect(foreignProblem).toEqual(missingProblem);

      expect((await current(bob.token)).statusCode).toBe(200);
      expect(await auditActions(t, { action: 'token.revoked' })).toHaveLength(0);
      // Her own token she may revoke.
      expect((await revoke(alice.id, alice.token)).statusCode).toBe(204);
    });

    it("lets an admin revoke another member's token", async () => {
      await addMember(t, manager.token, 'carol@example.com', 'admin');
      await addMember(t, manager.token, 'bob@example.com', 'member');
      const carol = await passwordToken(t, { scopes: ['tokens:manage'] }, 'carol@example.com');
      const bob = await passwordToken(t, { scopes: ['tokens:read'] }, 'bob@example.com');

      expect((await revoke(bob.id, carol.token)).statusCode).toBe(204);
      expectInvalidToken(await current(bob.token));
      const events = await auditActions(t, { action: 'token.revoked', targetId: bob.id });
      expect(events).toHaveLength(1);
      expect(events[0]?.actor).toEqual({ type: 'token', id: carol.id });
    });

    it("answers 404 for another organization's token and leaves it working", async () => {
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(manager.token), payload: { name: 'Globex', slug: 'globex' } });
      expect(created.statusCode).toBe(201);
      const foreign = await passwordToken(t, { scopes: ['tokens:read'], organization: 'globex' });

      const response = await revoke(foreign.id);
      expect(response.statusCode).toBe(404);
      expect(json(response).code).toBe('not_found');
      expect((await current(foreign.token)).statusCode).toBe(200);
    });
  });

  describe('DELETE /api/v1/tokens/current', () => {
    it('lets a token revoke itself even when it holds no management scope', async () => {
      const target = await passwordToken(t, { scopes: ['scans:read'] });
      // Without a tokens scope it may not even list tokens...
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(target.token) })).statusCode).toBe(403);

      // ...but it may always revoke itself.
      const response = await t.app.inject({ method: 'DELETE', url: '/api/v1/tokens/current', headers: bearer(target.token) });
      expect(response.statusCode).toBe(204);

      await expectRefusedEverywhere(target.token, target.id);
      expect(await listedStatus(target.id)).toBe('revoked');
      const events = await auditActions(t, { action: 'token.revoked', targetId: target.id });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ actor: { type: 'token', id: target.id }, authMethod: 'personal_token', details: { self: true } });
    });

    it('answers 404 with a console session and revokes nothing', async () => {
      const response = await t.app.inject({ method: 'DELETE', url: '/api/v1/tokens/current', headers: await signIn() });
      expect(response.statusCode).toBe(404);
      expect(json(response).code).toBe('not_found');
      expect((await current(manager.token)).statusCode).toBe(200);
      expect(await auditActions(t, { action: 'token.revoked' })).toHaveLength(0);
    });
  });

  describe('tokens that are no longer valid', () => {
    it('refuses an expired token on every management route', async () => {
      const target = await passwordToken(t, { scopes: MANAGEMENT_SCOPES, expiresInDays: 1 });
      t.clock.advance(DAY_MS - 1);
      expect((await current(target.token)).statusCode).toBe(200);

      t.clock.advance(2);
      await expectRefusedEverywhere(target.token, target.id);
      expect(await listedStatus(target.id)).toBe('expired');
    });

    it('refuses a disabled token on every management route, and accepts it again once enabled', async () => {
      const target = await passwordToken(t, { scopes: MANAGEMENT_SCOPES });
      const disable = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${target.id}`, headers: bearer(manager.token), payload: { enabled: false } });
      expect(disable.statusCode).toBe(200);

      await expectRefusedEverywhere(target.token, target.id);
      expect(await listedStatus(target.id)).toBe('disabled');

      const enable = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${target.id}`, headers: bearer(manager.token), payload: { enabled: true } });
      expect(enable.statusCode).toBe(200);
      expect((await current(target.token)).statusCode).toBe(200);
    });

    it('refuses a revoked token with full scopes on every management route', async () => {
      const target = await passwordToken(t, { scopes: MANAGEMENT_SCOPES });
      expect((await revoke(target.id)).statusCode).toBe(204);
      await expectRefusedEverywhere(target.token, target.id);
    });
  });

  describe('POST /api/v1/tokens/revoke-leaked', () => {
    function report(tokens: unknown, token = manager.token): Promise<LightMyRequestResponse> {
      return t.app.inject({ method: 'POST', url: '/api/v1/tokens/revoke-leaked', headers: bearer(token), payload: { tokens } });
    }

    it('revokes every valid token and audits it in its own organization', async () => {
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(manager.token), payload: { name: 'Globex', slug: 'globex' } });
      expect(created.statusCode).toBe(201);
      const globexId: string = json(created).id;
      const local = await passwordToken(t, { scopes: ['scans:read'], organization: 'acme' });
      const foreign = await passwordToken(t, { scopes: ['tokens:read'], organization: 'globex' });
      expect(local.body.organizationId).toBe(t.organizationId);
      expect(foreign.body.organizationId).toBe(globexId);

      const response = await report([local.token, 'not a token', foreign.token, local.token]);
      expect(response.statusCode).toBe(202);

      expectInvalidToken(await current(local.token));
      expectInvalidToken(await current(foreign.token));
      expect((await current(manager.token)).statusCode).toBe(200);

      const localEvents = await auditActions(t, { action: 'token.leak_reported' });
      expect(localEvents).toHaveLength(1);
      expect(localEvents[0]).toMatchObject({ actor: { type: 'token', id: manager.id }, organizationId: t.organizationId, target: { type: 'token', id: local.id } });
      const globexEvents = await t.context.deps.store.listAuditEvents({ organizationId: globexId, limit: 100, action: 'token.leak_reported' });
      expect(globexEvents).toHaveLength(1);
      expect(globexEvents[0]).toMatchObject({ organizationId: globexId, target: { type: 'token', id: foreign.id }, details: { reportedFromOrganizationId: t.organizationId } });
      expect(JSON.stringify([...localEvents, ...globexEvents])).not.toContain(local.token.slice(7));
    });

    it('writes no second event for a token that is reported again', async () => {
      const leaked = await passwordToken(t, { scopes: ['scans:read'] });
      expect((await report([leaked.token])).statusCode).toBe(202);
      expect((await report([leaked.token])).statusCode).toBe(202);
      expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(1);
    });

    it('accepts garbage, malformed and unknown well-formed tokens silently', async () => {
      const known = await passwordToken(t, { scopes: ['scans:read'] });
      const badChecksum = known.token.slice(0, -1) + (known.token.endsWith('A') ? 'B' : 'A');
      const unknown = generateToken('kw_pat');
      const strings = ['garbage', 'kw_pat_short', badChecksum, unknown, generateToken('kw_svc'), 'x'.repeat(200)];

      const response = await report(strings);
      expect(response.statusCode).toBe(202);
      expect(json(response)).toEqual({ received: strings.length });
      expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(0);
      expect((await current(known.token)).statusCode).toBe(200);
    });

    it('answers the same whichever of the strings were valid tokens', async () => {
      const first = await passwordToken(t, { scopes: ['scans:read'] });
      const second = await passwordToken(t, { scopes: ['scans:read'] });

      const valid = await report([first.token, second.token]);
      const invalid = await report([generateToken('kw_pat'), 'garbage']);
      expect(valid.statusCode).toBe(202);
      expect(invalid.statusCode).toBe(202);
      expect(valid.headers['content-type']).toBe(invalid.headers['content-type']);
      expect(valid.body).toBe(invalid.body);
      expect(json(valid)).toEqual({ received: 2 });
      expect(await auditActions(t, { action: 'token.leak_reported' })).toHaveLength(2);
    });

    it('accepts up to 1000 entries', async () => {
      const response = await report(Array.from({ length: 1000 }, (_, index) => `leak-${index}`));
      expect(response.statusCode).toBe(202);
      expect(json(response)).toEqual({ received: 1000 });
    });

    it.each([
      ['no entries', 0],
      ['1001 entries', 1001],
    ])('rejects %s with 400', async (_label, count) => {
      const target = await passwordToken(t, { scopes: ['scans:read'] });
      const tokens = Array.from({ length: count }, (_, index) => (index === 0 ? target.token : `leak-${index}`));
      const response = await report(tokens);
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(json(response).code).toBe('validation_failed');
      expect((await current(target.token)).statusCode).toBe(200);
    });

    it('needs a tokens scope', async () => {
      const reporter = await passwordToken(t, { scopes: ['scans:read'] });
      const leaked = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await report([leaked.token], reporter.token);
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('error="insufficient_scope"');
      expect((await current(leaked.token)).statusCode).toBe(200);
    });
  });
});
