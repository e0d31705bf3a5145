// Every lifecycle action leaves exactly one audit event that says who did it,
// how they authenticated, where, and in answer to which request.
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { addMember, bearer, createTestApp, json, OWNER_EMAIL, PASSWORD, passwordToken, type TestApp } from '../testing/test-app.ts';

const USER_AGENT = 'keyward-audit-test/1.0';
const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'scans:read'];

interface Expected {
  action: string;
  actor: { type: 'user' | 'token' | 'system'; id: string | null };
  authMethod: 'session' | 'personal_token' | 'client_token' | 'password' | 'system';
  organizationId: string | null;
  target: { type: string; id: string } | null;
}

interface SendOptions {
  token?: string;
  session?: Session;
  headers?: Record<string, string>;
  payload?: unknown;
}

interface Session {
  cookie: string;
  csrfToken: string;
}

describeEachDialect('audit trail', (open) => {
  let t: TestApp;
  let owner: { token: string; id: string };
  beforeEach(async () => {
    t = await createTestApp(open);
    t.clock.advance(1000);
    owner = await passwordToken(t, { name: 'owner management', scopes: MANAGEMENT_SCOPES });
    t.clock.advance(1000);
  });
  afterEach(async () => {
    await t.close();
  });

  function send(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, options: SendOptions = {}) {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...options.headers };
    if (options.token) Object.assign(headers, bearer(options.token));
    if (options.session) Object.assign(headers, { cookie: options.session.cookie, 'x-csrf-token': options.session.csrfToken });
    return t.app.inject({ method, url, headers, ...(options.payload !== undefined ? { payload: options.payload as Record<string, unknown> } : {}) });
  }

  async function created(response: LightMyRequestResponse): Promise<Record<string, any>> {
    expect(response.statusCode, response.body).toBeLessThan(300);
    return response.body ? json(response) : {};
  }

  async function signIn(): Promise<Session> {
    const response = await send('POST', '/api/v1/auth/login', { payload: { email: OWNER_EMAIL, password: PASSWORD } });
    expect(response.statusCode).toBe(200);
    const cookie = response.cookies.find((candidate) => candidate.name === 'keyward_session');
    if (!cookie) throw new Error('no session cookie');
    return { cookie: `keyward_session=${cookie.value}`, csrfToken: json(response).csrfToken };
  }

  async function eventIds(): Promise<Set<string>> {
    const rows = await t.database.db.selectFrom('auditEvents').select('id').execute();
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Starts watching the trail; the function it answers checks that exactly one
   * event was written since, in answer to `response`, and returns it.
   */
  async function watch() {
    const before = await eventIds();
    return async (response: LightMyRequestResponse, expected: Expected): Promise<Record<string, any>> => {
      const rows = await t.database.db.selectFrom('auditEvents').selectAll().execute();
      const fresh = rows.filter((row) => !before.has(row.id));
      expect(fresh.map((row) => row.action)).toEqual([expected.action]);
      const row = fresh[0]!;
      const stored = row.organizationId
        ? (await t.context.deps.store.listAuditEvents({ organizationId: row.organizationId, limit: 1000 })).find((event) => event.id === row.id)
        : undefined;
      // Events outside any organization are not listed by organization; read their columns directly.
      const event: Record<string, any> = stored ?? {
        action: row.action,
        actor: { type: row.actorType, id: row.actorId },
        authMethod: row.authMethod,
        organizationId: row.organizationId,
        target: row.targetType !== null && row.targetId !== null ? { type: row.targetType, id: row.targetId } : null,
        ip: row.ip,
        userAgent: row.userAgent,
        requestId: row.requestId,
        details: JSON.parse(String(row.details)),
      };
      const requestId = response.headers['x-request-id'];
      expect(requestId).toEqual(expect.any(String));
      expect(event).toMatchObject({ ...expected, ip: '127.0.0.1', userAgent: USER_AGENT, requestId });
      if (stored) expect(stored.at).toEqual(t.clock.now());
      // Never a secret: no token, hash or password in any field.
      const serialized = JSON.stringify(event);
      expect(serialized).not.toMatch(/kw_(pat|svc)_[0-9A-Za-z]{20}/);
      expect(serialized).not.toContain(PASSWORD);
      return event;
    };
  }

  describe('tokens', () => {
    it('records token.created by a personal token', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/tokens', { token: owner.token, payload: { name: 'ci', scopes: ['tokens:read'] } });
      const body = await created(response);
      const event = await expectOne(response, { action: 'token.created', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: body.id } });
      expect(event.details).toMatchObject({ kind: 'personal', name: 'ci', scopes: ['tokens:read'], userId: t.ownerId });
    });

    it('records token.created by the password flow', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/tokens', { payload: { name: 'headless', email: OWNER_EMAIL, password: PASSWORD, scopes: ['tokens:read'] } });
      const body = await created(response);
      await expectOne(response, { action: 'token.created', actor: { type: 'user', id: t.ownerId }, authMethod: 'password', organizationId: t.organizationId, target: { type: 'token', id: body.id } });
    });

    it('records token.created in a console session', async () => {
      const session = await signIn();
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/tokens', { session, payload: { name: 'from the console', scopes: ['tokens:read'] } });
      const body = await created(response);
      await expectOne(response, { action: 'token.created', actor: { type: 'user', id: t.ownerId }, authMethod: 'session', organizationId: t.organizationId, target: { type: 'token', id: body.id } });
    });

    it('records token.created by a service token', async () => {
      const client = await created(await send('POST', '/api/v1/clients', { token: owner.token, payload: { name: 'acme-eu' } }));
      const svc = await created(await send('POST', `/api/v1/clients/${client.id}/tokens`, { token: owner.token, payload: { name: 'admin', scopes: ['clients:manage'] } }));
      const expectOne = await watch();
      const response = await send('POST', `/api/v1/clients/${client.id}/tokens`, { token: svc.token, payload: { name: 'second', scopes: ['clients:manage'] } });
      const body = await created(response);
      const event = await expectOne(response, { action: 'token.created', actor: { type: 'token', id: svc.id }, authMethod: 'client_token', organizationId: t.organizationId, target: { type: 'token', id: body.id } });
      expect(event.details).toMatchObject({ kind: 'client' });
      expect(event.details).not.toHaveProperty('userId');
    });

    it('records token.updated', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read'] });
      const expectOne = await watch();
      const response = await send('PATCH', `/api/v1/tokens/${target.id}`, { token: owner.token, payload: { name: 'renamed', enabled: false } });
      await created(response);
      const event = await expectOne(response, { action: 'token.updated', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
      expect([...event.details.changed].sort()).toEqual(['enabled', 'name']);
    });

    it('records token.rotated', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read'] });
      const expectOne = await watch();
      const response = await send('POST', `/api/v1/tokens/${target.id}/rotate`, { token: owner.token, payload: { gracePeriodSeconds: 60 } });
      const body = await created(response);
      const event = await expectOne(response, { action: 'token.rotated', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
      expect(event.details).toMatchObject({ newTokenId: body.id, gracePeriodSeconds: 60 });
    });

    it('records token.revoked', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read'] });
      const expectOne = await watch();
      const response = await send('DELETE', `/api/v1/tokens/${target.id}`, { token: owner.token });
      expect(response.statusCode).toBe(204);
      await expectOne(response, { action: 'token.revoked', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
    });

    it('records a self-revocation as token.revoked by the token itself', async () => {
      const target = await passwordToken(t, { scopes: ['scans:read'] });
      const expectOne = await watch();
      const response = await send('DELETE', '/api/v1/tokens/current', { token: target.token });
      expect(response.statusCode).toBe(204);
      const event = await expectOne(response, { action: 'token.revoked', actor: { type: 'token', id: target.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
      expect(event.details).toMatchObject({ self: true });
    });

    it('records one token.leak_reported per live token reported, however often it is listed', async () => {
      const leaked = await passwordToken(t, { scopes: ['tokens:read'] });
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/tokens/revoke-leaked', { token: owner.token, payload: { tokens: [leaked.token, 'kw_pat_not-a-real-token', leaked.token] } });
      expect(response.statusCode).toBe(202);
      await expectOne(response, { action: 'token.leak_reported', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: leaked.id } });
    });

    it('records token.reuse_detected when a rotated-out token is rotated again', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read'] });
      await created(await send('POST', `/api/v1/tokens/${target.id}/rotate`, { token: owner.token, payload: {} }));
      const expectOne = await watch();
      const response = await send('POST', `/api/v1/tokens/${target.id}/rotate`, { token: owner.token, payload: {} });
      expect(response.statusCode).toBe(409);
      const event = await expectOne(response, { action: 'token.reuse_detected', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
      expect(event.details).toMatchObject({ how: 'rotate_again' });
    });

    it('records token.reuse_detected by the system, once, when a rotated-out secret is presented', async () => {
      const target = await passwordToken(t, { scopes: ['tokens:read'] });
      const rotated = await created(await send('POST', `/api/v1/tokens/${target.id}/rotate`, { token: owner.token, payload: { gracePeriodSeconds: 0 } }));
      t.clock.advance(1000);
      const expectOne = await watch();
      const response = await send('GET', '/api/v1/tokens/current', { token: target.token });
      expect(response.statusCode).toBe(401);
      const event = await expectOne(response, { action: 'token.reuse_detected', actor: { type: 'system', id: null }, authMethod: 'system', organizationId: t.organizationId, target: { type: 'token', id: target.id } });
      expect(event.details).toMatchObject({ how: 'rotated_out_secret_presented', revokedTokenIds: expect.arrayContaining([rotated.id]) });

      const before = await eventIds();
      expect((await send('GET', '/api/v1/tokens/current', { token: target.token })).statusCode).toBe(401);
      expect(await eventIds()).toEqual(before);
    });
  });

  describe('members, resources, clients and organizations', () => {
    it('records member.invited', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/members', { token: owner.token, payload: { email: 'bob@example.com', role: 'viewer' } });
      const body = await created(response);
      const event = await expectOne(response, {
        action: 'member.invited',
        actor: { type: 'token', id: owner.id },
        authMethod: 'personal_token',
        organizationId: t.organizationId,
        target: { type: 'invitation', id: body.invitationId },
      });
      expect(event.details).toMatchObject({ email: 'bob@example.com', role: 'viewer' });
      expect(JSON.stringify(event)).not.toContain(String(body.inviteUrl).split('#')[1]);
    });

    it('records member.updated', async () => {
      const bob = { userId: await addMember(t, owner.token, 'bob@example.com', 'viewer') };
      const expectOne = await watch();
      const response = await send('PATCH', `/api/v1/members/${bob.userId}`, { token: owner.token, payload: { role: 'admin' } });
      await created(response);
      const event = await expectOne(response, { action: 'member.updated', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'user', id: bob.userId } });
      expect(event.details).toMatchObject({ from: { role: 'viewer' }, to: { role: 'admin' } });
    });

    it('records member.removed with the tokens it revoked', async () => {
      const bob = { userId: await addMember(t, owner.token, 'bob@example.com', 'member') };
      const bobs = await passwordToken(t, { scopes: ['tokens:read'] }, 'bob@example.com');
      const expectOne = await watch();
      const response = await send('DELETE', `/api/v1/members/${bob.userId}`, { token: owner.token });
      expect(response.statusCode).toBe(204);
      const event = await expectOne(response, { action: 'member.removed', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'user', id: bob.userId } });
      expect(event.details).toMatchObject({ revokedTokenIds: [bobs.id] });
    });

    it('records resource.created', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/resources', { token: owner.token, payload: { type: 'network', name: 'lab' } });
      const body = await created(response);
      await expectOne(response, { action: 'resource.created', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'resource', id: body.id } });
    });

    it('records resource.deleted', async () => {
      const lab = await created(await send('POST', '/api/v1/resources', { token: owner.token, payload: { type: 'network', name: 'lab' } }));
      const expectOne = await watch();
      const response = await send('DELETE', `/api/v1/resources/${lab.id}`, { token: owner.token });
      expect(response.statusCode).toBe(204);
      await expectOne(response, { action: 'resource.deleted', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'resource', id: lab.id } });
    });

    it('records client.created', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/clients', { token: owner.token, payload: { name: 'acme-eu' } });
      const body = await created(response);
      await expectOne(response, { action: 'client.created', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'client', id: body.id } });
    });

    it('records client.updated', async () => {
      const client = await created(await send('POST', '/api/v1/clients', { token: owner.token, payload: { name: 'acme-eu' } }));
      const expectOne = await watch();
      const response = await send('PATCH', `/api/v1/clients/${client.id}`, { token: owner.token, payload: { description: 'EU instance' } });
      await created(response);
      await expectOne(response, { action: 'client.updated', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'client', id: client.id } });
    });

    it('records client.deleted with the tokens it revoked', async () => {
      const client = await created(await send('POST', '/api/v1/clients', { token: owner.token, payload: { name: 'acme-eu' } }));
      const svc = await created(await send('POST', `/api/v1/clients/${client.id}/tokens`, { token: owner.token, payload: { name: 'svc' } }));
      const expectOne = await watch();
      const response = await send('DELETE', `/api/v1/clients/${client.id}`, { token: owner.token });
      expect(response.statusCode).toBe(204);
      const event = await expectOne(response, { action: 'client.deleted', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'client', id: client.id } });
      expect(event.details).toMatchObject({ revokedTokenIds: [svc.id] });
    });

    it('records organization.created in the new organization', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/organizations', { token: owner.token, payload: { name: 'Globex', slug: 'globex' } });
      const body = await created(response);
      await expectOne(response, { action: 'organization.created', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: body.id, target: { type: 'organization', id: body.id } });
    });

    it('records organization.updated', async () => {
      const expectOne = await watch();
      const response = await send('PATCH', '/api/v1/organizations/current', { token: owner.token, payload: { tokenPolicy: { maxLifetimeDays: 90 } } });
      await created(response);
      const event = await expectOne(response, { action: 'organization.updated', actor: { type: 'token', id: owner.id }, authMethod: 'personal_token', organizationId: t.organizationId, target: { type: 'organization', id: t.organizationId } });
      expect(event.details).toMatchObject({ tokenPolicy: { maxLifetimeDays: 90 } });
    });
  });

  describe('sign-in', () => {
    it('records auth.login, with the request id the caller sent', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/auth/login', { headers: { 'x-request-id': 'req-login-0001' }, payload: { email: OWNER_EMAIL, password: PASSWORD } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-request-id']).toBe('req-login-0001');
      await expectOne(response, { action: 'auth.login', actor: { type: 'user', id: t.ownerId }, authMethod: 'session', organizationId: t.organizationId, target: { type: 'user', id: t.ownerId } });
    });

    it('records auth.login_failed for a wrong password', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/auth/login', { payload: { email: OWNER_EMAIL, password: 'not the password at all' } });
      expect(response.statusCode).toBe(401);
      const event = await expectOne(response, { action: 'auth.login_failed', actor: { type: 'user', id: t.ownerId }, authMethod: 'session', organizationId: t.organizationId, target: { type: 'user', id: t.ownerId } });
      expect(JSON.stringify(event)).not.toContain('not the password at all');
    });

    it('records auth.login_failed outside any organization for an unknown email', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/auth/login', { payload: { email: 'nobody@example.com', password: 'whatever it may be' } });
      expect(response.statusCode).toBe(401);
      await expectOne(response, { action: 'auth.login_failed', actor: { type: 'user', id: null }, authMethod: 'session', organizationId: null, target: null });
    });

    it('records auth.login_failed for a wrong password in the headless token flow', async () => {
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/tokens', { payload: { name: 'headless', email: OWNER_EMAIL, password: 'not the password at all' } });
      expect(response.statusCode).toBe(401);
      await expectOne(response, { action: 'auth.login_failed', actor: { type: 'user', id: t.ownerId }, authMethod: 'password', organizationId: t.organizationId, target: { type: 'user', id: t.ownerId } });
    });

    it('records auth.logout', async () => {
      const session = await signIn();
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/auth/logout', { session });
      expect(response.statusCode).toBe(204);
      await expectOne(response, { action: 'auth.logout', actor: { type: 'user', id: t.ownerId }, authMethod: 'session', organizationId: t.organizationId, target: { type: 'user', id: t.ownerId } });
    });

    it('records member.added by the person who accepts an invitation', async () => {
      const bob = await created(await send('POST', '/api/v1/members', { token: owner.token, payload: { email: 'bob@example.com', role: 'viewer' } }));
      const inviteToken = String(bob.inviteUrl).split('#')[1];
      const expectOne = await watch();
      const response = await send('POST', '/api/v1/auth/accept-invite', { payload: { inviteToken, password: 'bobs very own password' } });
      expect(response.statusCode).toBe(204);
      const bobId = (await t.context.deps.store.findUserByEmail('bob@example.com'))?.user.id ?? 'no such user';
      const event = await expectOne(response, { action: 'member.added', actor: { type: 'user', id: bobId }, authMethod: 'password', organizationId: t.organizationId, target: { type: 'user', id: bobId } });
      expect(event.details).toMatchObject({ role: 'viewer', invitationId: bob.invitationId });
      expect(JSON.stringify(event)).not.toContain(inviteToken);
    });
  });
});
