import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { bootstrapOwner, newKeyringEntry, parseKeyring } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import type { Database } from '../../storage/index.ts';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { auditActions, createTestApp, expectProblem, json, OWNER_EMAIL, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';
import type { App, AppContext } from '../app-types.ts';

const HOUR_MS = 60 * 60 * 1000;

interface SignedIn {
  cookie: string;
  secret: string;
  csrfToken: string;
  response: LightMyRequestResponse;
}

function sessionDigestOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function login(t: TestApp, email = OWNER_EMAIL, password = PASSWORD, remoteAddress?: string) {
  return t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, ...(remoteAddress ? { remoteAddress } : {}) });
}

async function signIn(t: TestApp): Promise<SignedIn> {
  const response = await login(t);
  expect(response.statusCode).toBe(200);
  const cookie = response.cookies.find((c) => c.name === 'keyward_session');
  if (!cookie) throw new Error('no session cookie');
  return { cookie: `keyward_session=${cookie.value}`, secret: cookie.value, csrfToken: json(response).csrfToken, response };
}


/** A 429 tells when to come back twice: Retry-After, and the RateLimit-* fields of the window that refused. */
function expectRateLimitHeaders(response: LightMyRequestResponse, limit: number, windowSeconds = 900): void {
  const retryAfter = Number(response.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(response.headers['ratelimit-limit']).toBe(String(limit));
  expect(response.headers['ratelimit-remaining']).toBe('0');
  expect(response.headers['ratelimit-reset']).toBe(String(retryAfter));
}

/** Failed sign-ins of unknown emails belong to no organization, so auditActions cannot see them. */
async function failedLoginsWithoutOrganization(t: TestApp) {
  return t.database.db.selectFrom('auditEvents').selectAll().where('action', '=', 'auth.login_failed').where('organizationId', 'is', null).execute();
}

describeEachDialect('console session routes', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.close();
  });

  describe('POST /api/v1/auth/login', () => {
    it('sets an HttpOnly SameSite=Strict session cookie and answers the CSRF token', async () => {
      const { response, secret, csrfToken } = await signIn(t);
      const cookie = response.cookies.find((c) => c.name === 'keyward_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
      expect(new Date(cookie?.expires as Date).toISOString()).toBe(new Date(t.clock.now().getTime() + 12 * HOUR_MS).toISOString());
      expect(response.headers['cache-control']).toBe('no-store');
      const body = json(response);
      expect(body).toMatchObject({ user: { id: t.ownerId, email: OWNER_EMAIL }, organizations: [{ id: t.organizationId, slug: 'acme', role: 'owner' }] });
      expect(csrfToken).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(csrfToken).not.toBe(secret);
      expect(JSON.stringify(body)).not.toContain(secret);

      const logins = await auditActions(t, { action: 'auth.login' });
      expect(logins).toHaveLength(1);
      expect(logins[0]).toMatchObject({ actor: { type: 'user', id: t.ownerId }, authMethod: 'session', target: { type: 'user', id: t.ownerId } });
    });

    it('writes neither the password, the session secret nor the CSRF token to the logs', async () => {
      const { secret, csrfToken, cookie } = await signIn(t);
      await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } });
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie, 'x-csrf-token': csrfToken } });
      const logs = t.logs.join('');
      expect(logs).toContain('/api/v1/auth/login');
      expect(logs).not.toContain(PASSWORD);
      expect(logs).not.toContain(secret);
      expect(logs).not.toContain(csrfToken);
    });

    it('answers a wrong password and an unknown email with the same 401', async () => {
      const wrongPassword = await login(t, OWNER_EMAIL, 'not the password at all');
      const unknownEmail = await login(t, 'nobody@example.com', PASSWORD);
      const body = expectProblem(wrongPassword, 401, 'unauthenticated');
      expectProblem(unknownEmail, 401, 'unauthenticated');
      expect(unknownEmail.body).toBe(wrongPassword.body);
      expect(unknownEmail.headers['www-authenticate']).toBe(wrongPassword.headers['www-authenticate']);
      expect(body.detail).toBe('The email or password is wrong.');
      expect(wrongPassword.cookies).toHaveLength(0);
      expect(unknownEmail.cookies).toHaveLength(0);
    });

    it('audits a wrong password as a failed login of that person, without the password', async () => {
      await login(t, OWNER_EMAIL, 'not the password at all');
      const failed = await auditActions(t, { action: 'auth.login_failed' });
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ actor: { type: 'user', id: t.ownerId }, authMethod: 'session', target: { type: 'user', id: t.ownerId }, details: { method: 'session' } });
      expect(JSON.stringify(failed)).not.toContain('not the password at all');
      expect(await auditActions(t, { action: 'auth.login' })).toHaveLength(0);
    });

    it('still runs an argon2 verification for an unknown email, and audits the failed login', async () => {
      const verify = vi.spyOn(t.context.deps.passwords, 'verify');
      const response = await login(t, 'nobody@example.com', PASSWORD);
      expectProblem(response, 401, 'unauthenticated');
      expect(verify).toHaveBeenCalledTimes(1);
      expect(verify.mock.calls[0]?.[0]).toMatch(/^\$argon2id\$/);
      const failed = await failedLoginsWithoutOrganization(t);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ actorType: 'user', actorId: null, targetId: null, authMethod: 'session', ip: '127.0.0.1' });
    });

    it('rejects an unknown field in the body as validation_failed', async () => {
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: PASSWORD, remember: true } });
      const body = expectProblem(response, 400, 'validation_failed');
      expect(body.errors).toContainEqual({ field: 'remember', message: 'is not a known field' });
    });

    it('refuses the 11th attempt on one account from an address after its 10 failures with 429, even with the right password', async () => {
      for (let attempt = 1; attempt <= 10; attempt++) {
        // Spelling the email differently does not open a fresh allowance.
        const email = attempt % 2 === 0 ? OWNER_EMAIL.toUpperCase() : OWNER_EMAIL;
        expectProblem(await login(t, email, `wrong password ${attempt}`), 401, 'unauthenticated');
      }
      const verify = vi.spyOn(t.context.deps.passwords, 'verify');
      const limited = await login(t, OWNER_EMAIL, PASSWORD);
      expectProblem(limited, 429, 'rate_limited');
      expectRateLimitHeaders(limited, 10);
      expect(limited.cookies).toHaveLength(0);
      // Refused before the password is even checked.
      expect(verify).not.toHaveBeenCalled();
      // The limit is per account: another email is still answered normally.
      expectProblem(await login(t, 'someone.else@example.com', PASSWORD), 401, 'unauthenticated');
      expect(await auditActions(t, { action: 'auth.login' })).toHaveLength(0);
    });

    it("does not lock the owner out: ten wrong passwords from other addresses leave the owner's own address alone", async () => {
      for (let attempt = 1; attempt <= 10; attempt++) {
        expectProblem(await login(t, OWNER_EMAIL, `wrong password ${attempt}`, attempt <= 5 ? '198.51.100.7' : '2001:db8::7'), 401, 'unauthenticated');
      }
      expectProblem(await login(t, OWNER_EMAIL, 'wrong password 11', '198.51.100.7'), 401, 'unauthenticated');
      expect((await login(t, OWNER_EMAIL, PASSWORD, '203.0.113.5')).statusCode).toBe(200);
      expect((await login(t, OWNER_EMAIL, PASSWORD)).statusCode).toBe(200);
    });

    it('refuses the 21st attempt from one IP within 15 minutes with 429, whichever accounts it tries', async () => {
      for (let attempt = 1; attempt <= 20; attempt++) {
        expectProblem(await login(t, `guess${attempt}@example.com`, PASSWORD, '198.51.100.20'), 401, 'unauthenticated');
      }
      const limited = await login(t, OWNER_EMAIL, PASSWORD, '198.51.100.20');
      expectProblem(limited, 429, 'rate_limited');
      expectRateLimitHeaders(limited, 20);
      // Another address signs in normally.
      expect((await login(t, OWNER_EMAIL, PASSWORD, '198.51.100.21')).statusCode).toBe(200);
    });
  });

  describe('a console session', () => {
    it('reads with GET without a CSRF token', async () => {
      const { cookie } = await signIn(t);
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { cookie } });
      expect(response.statusCode).toBe(200);
      expect(json(response)).toEqual({ items: [], nextCursor: null });
    });

    it('refuses POST, PATCH and DELETE without an X-CSRF-Token header with 403 forbidden', async () => {
      const { cookie } = await signIn(t);
      const { id } = await passwordToken(t, { name: 'target', scopes: ['scans:read'] });
      const requests = [
        { method: 'POST' as const, url: '/api/v1/tokens', payload: { name: 'from session', scopes: ['scans:read'] } },
        { method: 'PATCH' as const, url: `/api/v1/tokens/${id}`, payload: { name: 'renamed' } },
        { method: 'DELETE' as const, url: `/api/v1/tokens/${id}` },
      ];
      for (const request of requests) {
        const body = expectProblem(await t.app.inject({ ...request, headers: { cookie } }), 403, 'forbidden');
        expect(body.detail).toContain('X-CSRF-Token');
      }
      const unchanged = await t.context.deps.store.findToken(t.organizationId, id);
      expect(unchanged).toMatchObject({ name: 'target', revokedAt: null });
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
      expect(await auditActions(t, { action: 'token.revoked' })).toHaveLength(0);
    });

    it('refuses POST, PATCH and DELETE with a wrong X-CSRF-Token with 403 forbidden', async () => {
      const { cookie, csrfToken } = await signIn(t);
      const { id } = await passwordToken(t, { name: 'target', scopes: ['scans:read'] });
      const wrong = `${csrfToken.slice(0, -1)}${csrfToken.endsWith('A') ? 'B' : 'A'}`;
      const requests = [
        { method: 'POST' as const, url: '/api/v1/tokens', payload: { name: 'from session', scopes: ['scans:read'] } },
        { method: 'PATCH' as const, url: `/api/v1/tokens/${id}`, payload: { name: 'renamed' } },
        { method: 'DELETE' as const, url: `/api/v1/tokens/${id}` },
      ];
      for (const request of requests) {
        expectProblem(await t.app.inject({ ...request, headers: { cookie, 'x-csrf-token': wrong } }), 403, 'forbidden');
      }
      expect(await t.context.deps.store.findToken(t.organizationId, id)).toMatchObject({ name: 'target', revokedAt: null });
    });

    it("refuses another session's CSRF token", async () => {
      const first = await signIn(t);
      const second = await signIn(t);
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { cookie: first.cookie, 'x-csrf-token': second.csrfToken }, payload: { name: 'crossed', scopes: ['scans:read'] } });
      expectProblem(response, 403, 'forbidden');
    });

    it('creates, changes and revokes with the right X-CSRF-Token, audited as a session', async () => {
      const { cookie, csrfToken } = await signIn(t);
      const headers = { cookie, 'x-csrf-token': csrfToken };
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers, payload: { name: 'from session', scopes: ['scans:read'] } });
      expect(created.statusCode).toBe(201);
      const { id, token } = json(created);
      expect(token).toMatch(/^kw_pat_/);

      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${id}`, headers, payload: { name: 'renamed' } });
      expect(patched.statusCode).toBe(200);
      expect(json(patched).name).toBe('renamed');

      const revoked = await t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers });
      expect(revoked.statusCode).toBe(204);
      expect(json(await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: { cookie } })).status).toBe('revoked');

      const events = await auditActions(t, { targetId: id });
      expect(events.map((event) => event.action).sort()).toEqual(['token.created', 'token.revoked', 'token.updated']);
      for (const event of events) expect(event).toMatchObject({ authMethod: 'session', actor: { type: 'user', id: t.ownerId } });
    });

    it('is refused with 401 once 12 hours have passed', async () => {
      const { cookie } = await signIn(t);
      t.clock.advance(12 * HOUR_MS - 1000);
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } })).statusCode).toBe(200);
      t.clock.advance(1000);
      const expired = await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } });
      expectProblem(expired, 401, 'unauthenticated');
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { cookie } }), 401, 'unauthenticated');
    });

    it('is deleted from storage at the next sign-in after it ended', async () => {
      const first = await signIn(t);
      t.clock.advance(12 * HOUR_MS);
      await signIn(t);
      const sessions = t.context.deps.store;
      expect(await sessions.findSession(sessionDigestOf(first.secret))).toBeNull();
    });

    it('is refused with 401 for a cookie the server never issued', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { cookie: 'keyward_session=forged-session-value' } });
      expectProblem(response, 401, 'unauthenticated');
    });
  });

  describe('GET /api/v1/auth/session', () => {
    it('answers the person, their organizations and the same CSRF token as the login', async () => {
      const { cookie, csrfToken } = await signIn(t);
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(json(response)).toMatchObject({
        user: { id: t.ownerId, email: OWNER_EMAIL },
        organizationId: t.organizationId,
        organizations: [{ id: t.organizationId, role: 'owner' }],
        csrfToken,
        expiresAt: new Date(t.clock.now().getTime() + 12 * HOUR_MS).toISOString(),
      });
    });

    it('answers 401 without a session', async () => {
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/auth/session' }), 401, 'unauthenticated');
    });
  });

  describe('POST /api/v1/auth/logout', () => {
    it('ends the session, so its cookie is then refused with 401', async () => {
      const { cookie, csrfToken } = await signIn(t);
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie, 'x-csrf-token': csrfToken } });
      expect(response.statusCode).toBe(204);
      const cleared = response.cookies.find((c) => c.name === 'keyward_session');
      expect(cleared?.value).toBe('');

      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } }), 401, 'unauthenticated');
      expectProblem(await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie, 'x-csrf-token': csrfToken } }), 401, 'unauthenticated');
      const logouts = await auditActions(t, { action: 'auth.logout' });
      expect(logouts).toHaveLength(1);
      expect(logouts[0]).toMatchObject({ authMethod: 'session', actor: { type: 'user', id: t.ownerId } });
    });

    it('needs the CSRF token, so another site cannot sign the person out', async () => {
      const { cookie } = await signIn(t);
      expectProblem(await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie } }), 403, 'forbidden');
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { cookie } })).statusCode).toBe(200);
    });
  });
});

describeEachDialect('POST /api/v1/tokens with email and password', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    // The default limit, so the real limiter runs: 5 per 15 minutes per IP.
    t = await createTestApp(open, { env: { KEYWARD_PASSWORD_FLOW_MAX: '5' } });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.close();
  });

  function headless(password = PASSWORD, remoteAddress = '127.0.0.1', email = OWNER_EMAIL) {
    return t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      remoteAddress,
      payload: { name: `t-${Math.random().toString(36).slice(2, 10)}`, scopes: ['scans:read'], email, password },
    });
  }

  it('answers the 6th request from one IP within 15 minutes with 429 rate_limited and Retry-After', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) expect((await headless()).statusCode).toBe(201);
    const limited = await headless();
    expectProblem(limited, 429, 'rate_limited');
    expectRateLimitHeaders(limited, 5);
    expect(await auditActions(t, { action: 'token.created' })).toHaveLength(5);
  });

  it('does not limit another IP', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) expect((await headless(PASSWORD, '192.0.2.10')).statusCode).toBe(201);
    expectProblem(await headless(PASSWORD, '192.0.2.10'), 429, 'rate_limited');
    expect((await headless(PASSWORD, '192.0.2.11')).statusCode).toBe(201);
  });

  it('answers a wrong password with 401 and counts it towards the limit', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      const refused = await headless(`wrong password ${attempt}`);
      expectProblem(refused, 401, 'unauthenticated');
      // A wrong password is not a bad token: the challenge names no token error.
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    }
    const verify = vi.spyOn(t.context.deps.passwords, 'verify');
    expectProblem(await headless(PASSWORD), 429, 'rate_limited');
    expect(verify).not.toHaveBeenCalled();
    const failed = await auditActions(t, { action: 'auth.login_failed' });
    expect(failed).toHaveLength(5);
    expect(failed[0]).toMatchObject({ authMethod: 'password', details: { method: 'password' } });
    expect(await auditActions(t, { action: 'token.created' })).toHaveLength(0);
  });

  it("shares an address's failures on an account with console sign-in, and leaves the owner's other addresses alone", async () => {
    // Ten failures from one address on the console: its password-flow allowance is untouched, its guessing is not.
    for (let attempt = 1; attempt <= 10; attempt++) {
      const failed = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', remoteAddress: '192.0.2.20', payload: { email: OWNER_EMAIL, password: `wrong ${attempt}` } });
      expectProblem(failed, 401, 'unauthenticated');
    }
    const verify = vi.spyOn(t.context.deps.passwords, 'verify');
    const limited = await headless(PASSWORD, '192.0.2.20');
    expectProblem(limited, 429, 'rate_limited');
    expectRateLimitHeaders(limited, 10);
    expect(verify).not.toHaveBeenCalled();
    // The owner, from an address that has not failed, gets the token.
    expect((await headless(PASSWORD, '198.51.100.1')).statusCode).toBe(201);
  });

  it('limits an IPv6 client by its /64, not per address', async () => {
    for (let host = 1; host <= 5; host++) expect((await headless(PASSWORD, `2001:db8::${host}`)).statusCode).toBe(201);
    expectProblem(await headless(PASSWORD, '2001:db8::99'), 429, 'rate_limited');
    expect((await headless(PASSWORD, '2001:db8:0:1::1')).statusCode).toBe(201);
  });

  it('answers an unknown email like a wrong password, after an argon2 verification, and audits it', async () => {
    const verify = vi.spyOn(t.context.deps.passwords, 'verify');
    const unknown = await headless(PASSWORD, '127.0.0.1', 'nobody@example.com');
    const wrong = await headless('not the password at all');
    expectProblem(unknown, 401, 'unauthenticated');
    expect(unknown.body).toBe(wrong.body);
    expect(verify).toHaveBeenCalledTimes(2);
    const failed = await failedLoginsWithoutOrganization(t);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ authMethod: 'password', actorId: null, targetId: null });
  });
});

describeEachDialect('POST /api/v1/setup', (open) => {
  const SETUP_TOKEN = 'setup-token-0123456789abcdef';
  let database: Database;
  let app: App;
  let context: AppContext;

  beforeEach(async () => {
    database = await open();
    const config = loadConfig({ LOG_LEVEL: 'info', KEYWARD_CONFIG: '' }, '/nonexistent-keyward-test-dir');
    const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
    ({ app, context } = await buildApp({ config, database, keyring: parseKeyring(newKeyringEntry('v1')), setupToken: SETUP_TOKEN, logStream: quiet }));
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await database.close();
  });

  function setup(setupToken = SETUP_TOKEN, email = 'first@example.com') {
    return app.inject({
      method: 'POST',
      url: '/api/v1/setup',
      payload: { setupToken, email, password: 'a long enough password', organizationName: 'First Org', organizationSlug: 'first' },
    });
  }

  it('creates the first owner and organization with the right setup token, once', async () => {
    const response = await setup();
    expect(response.statusCode).toBe(201);
    const body = json(response);
    expect(body).toMatchObject({ user: { email: 'first@example.com' }, organization: { name: 'First Org', slug: 'first' } });
    expect(await context.deps.store.countUsers()).toBe(1);
    const memberships = await context.deps.store.listMembershipsOfUser(body.user.id);
    expect(memberships.map((m) => m.role)).toEqual(['owner']);
    const events = await context.deps.store.listAuditEvents({ organizationId: body.organization.id, limit: 10, action: 'organization.created' });
    expect(events).toHaveLength(1);
    // The person who used the setup link is the actor, with the request's facts.
    expect(events[0]).toMatchObject({ actor: { type: 'user', id: body.user.id }, authMethod: 'password', ip: '127.0.0.1', requestId: response.headers['x-request-id'] });

    const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'first@example.com', password: 'a long enough password' } });
    expect(login.statusCode).toBe(200);

    expectProblem(await setup(SETUP_TOKEN, 'second@example.com'), 404, 'not_found');
    expect(await context.deps.store.countUsers()).toBe(1);
  });

  it('answers 404 for a wrong setup token and creates no one', async () => {
    expectProblem(await setup('wrong-setup-token-0123456789'), 404, 'not_found');
    expect(await context.deps.store.countUsers()).toBe(0);
    // The right token still works afterwards.
    expect((await setup()).statusCode).toBe(201);
  });

  it('answers 409 when an owner already exists, and 404 from then on', async () => {
    await bootstrapOwner(context.deps, { email: 'elsewhere@example.com', password: 'a long enough password', organizationName: 'Other', organizationSlug: 'other' });
    expectProblem(await setup(), 409, 'conflict');
    expectProblem(await setup(), 404, 'not_found');
    expect(await context.deps.store.countUsers()).toBe(1);
  });
});
