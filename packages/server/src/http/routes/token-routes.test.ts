import { presetScopes } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect, type OpenTestDatabase } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectInvalidToken, expectProblem, json, OWNER_EMAIL, ownerToken, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';
import { SESSION_COOKIE } from '../authenticate.ts';

type Headers = Record<string, string>;
type Payload = Record<string, unknown> | unknown[] | string;

const DAY_MS = 86_400_000;
const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read'];
const MISSING_ID = 'tok_doesNotExist000000';
/** SPEC §11: the token as listed. Nothing else may reach a response. */
const TOKEN_FIELDS = [
  'allowedIps',
  'createdAt',
  'expiresAt',
  'graceEndsAt',
  'hint',
  'id',
  'kind',
  'lastUsedAt',
  'lastUsedIp',
  'metadata',
  'name',
  'organizationId',
  'owner',
  'permission',
  'rateLimit',
  'refill',
  'remaining',
  'resources',
  'resourcesLimited',
  'rotatedFrom',
  'scopes',
  'status',
];

/** A fresh app for every test, or one shared by a block whose tests change nothing they rely on. */
function useTestApp(open: OpenTestDatabase, lifetime: 'test' | 'block' = 'test'): () => TestApp {
  let current: TestApp | undefined;
  const start = async () => {
    current = await createTestApp(open);
  };
  const stop = async () => {
    await current?.close();
    current = undefined;
  };
  if (lifetime === 'test') {
    beforeEach(start);
    afterEach(stop);
  } else {
    beforeAll(start);
    afterAll(stop);
  }
  return () => {
    if (!current) throw new Error('the test app is not running');
    return current;
  };
}


/** 400 validation_failed with exactly one `errors` entry naming the field. */
function expectFieldError(response: LightMyRequestResponse, field: string): void {
  const body = expectProblem(response, 400, 'validation_failed');
  expect(body.errors.filter((error: { field: string }) => error.field === field), JSON.stringify(body.errors)).toHaveLength(1);
}


/** The 404 body without `instance`, which repeats the URL and so the id. */
function notFoundBody(response: LightMyRequestResponse): Record<string, any> {
  const { instance: _instance, ...body } = expectProblem(response, 404, 'not_found');
  return body;
}

function createToken(t: TestApp, headers: Headers, payload: Payload): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers, payload });
}

function getToken(t: TestApp, headers: Headers, id: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers });
}

function patchToken(t: TestApp, headers: Headers, id: string, payload: Payload): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${id}`, headers, payload });
}

function listTokens(t: TestApp, headers: Headers, query = ''): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: `/api/v1/tokens${query}`, headers });
}

function revokeToken(t: TestApp, headers: Headers, id: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers });
}

/** Creates a token with a bearer token and answers its id and plaintext. */
async function issue(t: TestApp, creator: string, payload: Record<string, unknown>): Promise<{ id: string; token: string; body: Record<string, any> }> {
  const response = await createToken(t, bearer(creator), payload);
  expect(response.statusCode, response.body).toBe(201);
  const body = json(response);
  return { id: body.id, token: body.token, body };
}

async function listIds(t: TestApp, headers: Headers, query = ''): Promise<string[]> {
  const response = await listTokens(t, headers, query);
  expect(response.statusCode, response.body).toBe(200);
  return json(response).items.map((item: { id: string }) => item.id);
}

/** Signs in to the console: the session cookie and the CSRF header to send along. */
async function signIn(t: TestApp, email = OWNER_EMAIL): Promise<{ cookie: string; 'x-csrf-token': string }> {
  const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } });
  expect(response.statusCode, response.body).toBe(200);
  const cookie = response.cookies.find((candidate) => candidate.name === SESSION_COOKIE);
  if (!cookie) throw new Error('login set no session cookie');
  return { cookie: `${SESSION_COOKIE}=${cookie.value}`, 'x-csrf-token': json(response).csrfToken };
}

async function addResources(t: TestApp, manager: string, names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const name of names) {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(manager), payload: { type: 'network', name } });
    expect(response.statusCode, response.body).toBe(201);
    ids.push(json(response).id);
  }
  return ids;
}

async function setTokenPolicy(t: TestApp, manager: string, tokenPolicy: Record<string, unknown>): Promise<void> {
  const response = await t.app.inject({ method: 'PATCH', url: '/api/v1/organizations/current', headers: bearer(manager), payload: { tokenPolicy } });
  expect(response.statusCode, response.body).toBe(200);
  expect(json(response).tokenPolicy).toMatchObject(tokenPolicy);
}

async function storedToken(t: TestApp, id: string, organizationId = t.organizationId) {
  const token = await t.context.deps.store.findToken(organizationId, id);
  if (!token) throw new Error(`token ${id} is not stored`);
  return token;
}

describeEachDialect('token routes', (open) => {
  describe('POST /api/v1/tokens', () => {
    const app = useTestApp(open);

    it('creates a token with the password flow, returns the plaintext once and audits the password method', async () => {
      const t = app();
      const response = await createToken(t, {}, { name: 'ci deploy', scopes: ['scans:read'], email: OWNER_EMAIL, password: PASSWORD });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.headers['cache-control']).toBe('no-store');
      const created = json(response);
      expect(created.token).toMatch(/^kw_pat_[0-9A-Za-z]{49}$/);
      expect(created).toMatchObject({ name: 'ci deploy', kind: 'personal', status: 'active', scopes: ['scans:read'], permission: 'owner', owner: { type: 'user', id: t.ownerId } });
      expect(created.hint).toBe(`kw_pat_…${created.token.slice(-4)}`);

      const events = await auditActions(t, { targetId: created.id });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ action: 'token.created', actor: { type: 'user', id: t.ownerId }, authMethod: 'password', target: { type: 'token', id: created.id } });

      const manager = await ownerToken(t);
      const again = await getToken(t, bearer(manager), created.id);
      expect(again.statusCode).toBe(200);
      expect(json(again)).not.toHaveProperty('token');
      expect(again.body).not.toContain(created.token);
    });

    it('creates a token with a bearer token holding tokens:write, audited as that token', async () => {
      const t = app();
      const creator = await passwordToken(t, { name: 'creator', scopes: ['tokens:write', 'scans:read'] });
      const created = await issue(t, creator.token, { name: 'from a token', scopes: ['scans:read'] });
      expect(created.body).toMatchObject({ kind: 'personal', owner: { type: 'user', id: t.ownerId }, scopes: ['scans:read'] });

      const events = await auditActions(t, { targetId: created.id });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        action: 'token.created',
        actor: { type: 'token', id: creator.id },
        authMethod: 'personal_token',
        details: { userId: t.ownerId, name: 'from a token', scopes: ['scans:read'] },
      });
    });

    it('creates a token with a console session and its CSRF token, audited as the session', async () => {
      const t = app();
      const session = await signIn(t);
      const response = await createToken(t, session, { name: 'from the console', scopes: ['scans:read'] });
      expect(response.statusCode, response.body).toBe(201);
      const created = json(response);
      expect(created).toMatchObject({ owner: { type: 'user', id: t.ownerId }, permission: 'owner' });
      expect(created.token).toMatch(/^kw_pat_/);

      const events = await auditActions(t, { targetId: created.id });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ action: 'token.created', actor: { type: 'user', id: t.ownerId }, authMethod: 'session' });
    });

    it('refuses a console session without its X-CSRF-Token', async () => {
      const t = app();
      const { cookie } = await signIn(t);
      expectProblem(await createToken(t, { cookie }, { name: 'forged', scopes: ['scans:read'] }), 403, 'forbidden');
      expectProblem(await createToken(t, { cookie, 'x-csrf-token': 'not-the-token' }, { name: 'forged', scopes: ['scans:read'] }), 403, 'forbidden');
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(0);
    });

    it('refuses a bearer token without tokens:write with 403 insufficient_scope', async () => {
      const t = app();
      const reader = await passwordToken(t, { name: 'reader', scopes: ['scans:read', 'tokens:read'] });
      const response = await createToken(t, bearer(reader.token), { name: 'more', scopes: ['scans:read'] });
      expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
      expect(response.headers['www-authenticate']).toContain('scope="tokens:write"');
    });

    it('refuses email and password alongside a bearer token', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const response = await createToken(t, bearer(manager), { name: 'mixed', email: OWNER_EMAIL, password: PASSWORD });
      expectProblem(response, 403, 'forbidden');
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(1);
    });

    it('answers 401 to a wrong password and audits the failed sign-in', async () => {
      const t = app();
      const response = await createToken(t, {}, { name: 'guess', email: OWNER_EMAIL, password: 'wrong password, sorry' });
      expectProblem(response, 401, 'unauthenticated');
      expect(await auditActions(t, { action: 'auth.login_failed' })).toMatchObject([{ authMethod: 'password', target: { type: 'user', id: t.ownerId } }]);
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(0);
    });

    it('answers 401 with a Bearer challenge to a request with no credentials at all', async () => {
      const t = app();
      const response = await createToken(t, {}, { name: 'anonymous' });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    });

    it("defaults to the catalog's default preset, the caller's role, every resource and 30 days", async () => {
      const t = app();
      const created = await passwordToken(t, { name: 'defaults' });
      expect(created.body.scopes).toEqual(presetScopes(t.config.catalog, t.config.catalog.defaultPreset));
      expect(created.body.scopes).toEqual(['clearances:read', 'reports:read', 'scans:read', 'tokens:read']);
      expect(created.body).toMatchObject({
        permission: 'owner',
        resources: [],
        allowedIps: [],
        rateLimit: null,
        metadata: {},
        remaining: null,
        refill: null,
        lastUsedAt: null,
        rotatedFrom: null,
        createdAt: t.clock.now().toISOString(),
        expiresAt: new Date(t.clock.now().getTime() + 30 * DAY_MS).toISOString(),
      });
    });

    it('trims the default preset to the scopes the creating token holds', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const created = await issue(t, manager, { name: 'defaults' });
      expect(created.body.scopes).toEqual(['tokens:read']);
    });

    it('refuses a never-expiring token until the organization allows one', async () => {
      const t = app();
      const manager = await ownerToken(t);
      expectFieldError(await createToken(t, bearer(manager), { name: 'forever', expiresInDays: null }), 'expiresInDays');

      await setTokenPolicy(t, manager, { allowNoExpiry: true });
      // A person, not the manager's expiring token: a token may not make one that outlives it.
      const created = await passwordToken(t, { name: 'forever', expiresInDays: null, scopes: ['tokens:read'] });
      expect(created.body).toMatchObject({ expiresAt: null, status: 'active' });
      t.clock.advance(5000 * DAY_MS);
      const later = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(created.token) });
      expect(json(later)).toMatchObject({ id: created.id, expiresAt: null, status: 'active' });
    });

    it("holds expiresInDays to the organization's maximum lifetime", async () => {
      const t = app();
      const manager = await ownerToken(t, { expiresInDays: 365 });
      await setTokenPolicy(t, manager, { maxLifetimeDays: 90 });
      expectFieldError(await createToken(t, bearer(manager), { name: 'long', expiresInDays: 91 }), 'expiresInDays');
      const created = await issue(t, manager, { name: 'long', expiresInDays: 90 });
      expect(created.body.expiresAt).toBe(new Date(t.clock.now().getTime() + 90 * DAY_MS).toISOString());
    });

    it("caps the default lifetime at the organization's maximum", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await setTokenPolicy(t, manager, { maxLifetimeDays: 7 });
      const created = await issue(t, manager, { name: 'short' });
      expect(created.body.expiresAt).toBe(new Date(t.clock.now().getTime() + 7 * DAY_MS).toISOString());
    });

    it('answers 409 to a name already used by a live token of the same owner, and frees it once that token is revoked', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const first = await issue(t, manager, { name: 'deploy', scopes: ['tokens:read'] });
      expectProblem(await createToken(t, bearer(manager), { name: 'deploy', scopes: ['tokens:read'] }), 409, 'conflict');

      expect((await revokeToken(t, bearer(manager), first.id)).statusCode).toBe(204);
      const second = await issue(t, manager, { name: 'deploy', scopes: ['tokens:read'] });
      expect(second.id).not.toBe(first.id);
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(3);
    });

    it('frees a name once the token that had it has expired', async () => {
      const t = app();
      const manager = await ownerToken(t);
      await issue(t, manager, { name: 'nightly', expiresInDays: 1 });
      t.clock.advance(DAY_MS);
      await issue(t, manager, { name: 'nightly', expiresInDays: 1 });
    });

    it('lets two people give their tokens the same name', async () => {
      const t = app();
      const manager = await ownerToken(t);
      await addMember(t, manager, 'member@example.com', 'member');
      await issue(t, manager, { name: 'laptop', scopes: ['tokens:read'] });
      const theirs = await passwordToken(t, { name: 'laptop', scopes: ['tokens:read'] }, 'member@example.com');
      expect(theirs.body.name).toBe('laptop');
    });
  });

  describe('POST /api/v1/tokens validation', () => {
    const app = useTestApp(open, 'block');
    let manager: string;
    beforeAll(async () => {
      manager = await ownerToken(app());
    });

    async function expectRefused(payload: Payload, field: string): Promise<void> {
      const t = app();
      expectFieldError(await createToken(t, bearer(manager), payload), field);
      // Only the manager's own token was ever created.
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(1);
    }

    const tooManyKeys = Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`k${index}`, index]));

    it.each<{ what: string; payload: Record<string, unknown>; field: string }>([
      { what: 'an unknown field', payload: { name: 'ok', owner: 'someone' }, field: 'owner' },
      { what: 'a missing name', payload: { scopes: ['scans:read'] }, field: 'name' },
      { what: 'an empty name', payload: { name: '' }, field: 'name' },
      { what: 'a name with a slash', payload: { name: 'ci/deploy' }, field: 'name' },
      { what: 'a name with a trailing newline', payload: { name: 'deploy\n' }, field: 'name' },
      { what: 'a name longer than 64 characters', payload: { name: 'x'.repeat(65) }, field: 'name' },
      { what: 'a name that is not a string', payload: { name: 42 }, field: 'name' },
      { what: 'zero days to expiry', payload: { name: 'ok', expiresInDays: 0 }, field: 'expiresInDays' },
      { what: 'more days than the default policy allows', payload: { name: 'ok', expiresInDays: 366 }, field: 'expiresInDays' },
      { what: 'more days than any policy allows', payload: { name: 'ok', expiresInDays: 3651 }, field: 'expiresInDays' },
      { what: 'a fraction of a day', payload: { name: 'ok', expiresInDays: 1.5 }, field: 'expiresInDays' },
      { what: 'days given as a string', payload: { name: 'ok', expiresInDays: '30' }, field: 'expiresInDays' },
      { what: 'no expiry while the organization requires one', payload: { name: 'ok', expiresInDays: null }, field: 'expiresInDays' },
      { what: 'a scope missing from the catalog', payload: { name: 'ok', scopes: ['scans:read', 'scans:delete'] }, field: 'scopes/1' },
      { what: 'a scope of an unknown area', payload: { name: 'ok', scopes: ['billing:read'] }, field: 'scopes/0' },
      { what: 'a scope that is not area:action', payload: { name: 'ok', scopes: ['scans'] }, field: 'scopes/0' },
      { what: 'a scope in capitals', payload: { name: 'ok', scopes: ['SCANS:READ'] }, field: 'scopes/0' },
      { what: 'the match-everything wildcard', payload: { name: 'ok', scopes: ['*:*'] }, field: 'scopes/0' },
      { what: 'a wildcard that matches no scope', payload: { name: 'ok', scopes: ['billing:*'] }, field: 'scopes/0' },
      { what: 'a scope too short to be one', payload: { name: 'ok', scopes: ['ab'] }, field: 'scopes/0' },
      { what: 'a scope that is not a string', payload: { name: 'ok', scopes: [7] }, field: 'scopes/0' },
      { what: 'a repeated scope', payload: { name: 'ok', scopes: ['scans:read', 'scans:read'] }, field: 'scopes' },
      { what: 'scopes that are not a list', payload: { name: 'ok', scopes: 'scans:read' }, field: 'scopes' },
      { what: 'an unknown resource', payload: { name: 'ok', resources: ['res_doesNotExist0000'] }, field: 'resources/0' },
      { what: 'a malformed resource id', payload: { name: 'ok', resources: ['scanners'] }, field: 'resources/0' },
      { what: 'a repeated resource', payload: { name: 'ok', resources: ['res_same', 'res_same'] }, field: 'resources' },
      { what: 'resources that are not a list', payload: { name: 'ok', resources: 'res_one' }, field: 'resources' },
      { what: 'a permission that is not a role', payload: { name: 'ok', permission: 'superuser' }, field: 'permission' },
      { what: 'a permission in capitals', payload: { name: 'ok', permission: 'Admin' }, field: 'permission' },
      { what: 'an IPv4 address out of range', payload: { name: 'ok', allowedIps: ['10.0.0.300'] }, field: 'allowedIps/0' },
      { what: 'an IPv4 prefix over 32 bits', payload: { name: 'ok', allowedIps: ['10.0.0.0/33'] }, field: 'allowedIps/0' },
      { what: 'an IPv6 prefix over 128 bits', payload: { name: 'ok', allowedIps: ['2001:db8::/129'] }, field: 'allowedIps/0' },
      { what: 'a host name among addresses', payload: { name: 'ok', allowedIps: ['10.0.0.1', 'example.com'] }, field: 'allowedIps/1' },
      { what: 'an IPv6 address with a zone id', payload: { name: 'ok', allowedIps: ['fe80::1%eth0'] }, field: 'allowedIps/0' },
      { what: 'allowed IPs that are not a list', payload: { name: 'ok', allowedIps: '10.0.0.1' }, field: 'allowedIps' },
      { what: 'a rate limit of zero', payload: { name: 'ok', rateLimit: { limit: 0, windowSeconds: 60 } }, field: 'rateLimit/limit' },
      { what: 'a rate limit without a window', payload: { name: 'ok', rateLimit: { limit: 10 } }, field: 'rateLimit/windowSeconds' },
      { what: 'a rate limit window over a day', payload: { name: 'ok', rateLimit: { limit: 10, windowSeconds: 86_401 } }, field: 'rateLimit/windowSeconds' },
      { what: 'a rate limit with an unknown field', payload: { name: 'ok', rateLimit: { limit: 10, windowSeconds: 60, burst: 5 } }, field: 'rateLimit/burst' },
      { what: 'a rate limit that is a bare number', payload: { name: 'ok', rateLimit: 100 }, field: 'rateLimit' },
      { what: 'metadata over 4 KiB', payload: { name: 'ok', metadata: { note: 'x'.repeat(4089) } }, field: 'metadata' },
      { what: 'metadata with more than 50 keys', payload: { name: 'ok', metadata: tooManyKeys }, field: 'metadata' },
      { what: 'metadata with a key over 64 characters', payload: { name: 'ok', metadata: { ['k'.repeat(65)]: 1 } }, field: `metadata/${'k'.repeat(65)}` },
      { what: 'metadata with an empty key', payload: { name: 'ok', metadata: { '': 1 } }, field: 'metadata/' },
      { what: 'metadata that is a list', payload: { name: 'ok', metadata: ['team'] }, field: 'metadata' },
      { what: 'metadata that is a string', payload: { name: 'ok', metadata: 'team=infra' }, field: 'metadata' },
      { what: 'a refill without remaining', payload: { name: 'ok', refill: { amount: 100, interval: 'daily' } }, field: 'refill' },
      { what: 'a refill with an unknown interval', payload: { name: 'ok', remaining: 100, refill: { amount: 100, interval: 'weekly' } }, field: 'refill/interval' },
      { what: 'a negative remaining', payload: { name: 'ok', remaining: -1 }, field: 'remaining' },
      { what: 'remaining given as a string', payload: { name: 'ok', remaining: '5' }, field: 'remaining' },
      { what: 'an email that is not one', payload: { name: 'ok', email: 'owner', password: PASSWORD }, field: 'email' },
    ])('rejects $what', async ({ payload, field }) => {
      await expectRefused(payload, field);
    });

    it('names every invalid field at once, one entry each', async () => {
      const payload = { name: 'bad/name', scopes: 'scans:read', expiresInDays: 0, permission: 'root', rateLimit: 5, remaining: -1, metadata: [], color: 'blue' };
      const body = expectProblem(await createToken(app(), bearer(manager), payload), 400, 'validation_failed');
      expect(body.errors.map((error: { field: string }) => error.field).sort()).toEqual(['color', 'expiresInDays', 'metadata', 'name', 'permission', 'rateLimit', 'remaining', 'scopes']);
      expect(body.errors).toContainEqual({ field: 'color', message: 'is not a known field' });
      expect(body.errors).toContainEqual({ field: 'permission', message: 'must be one of viewer, member, admin, owner' });
    });

    it('rejects a body that is not valid JSON', async () => {
      const response = await createToken(app(), { ...bearer(manager), 'content-type': 'application/json' }, '{"name": "half');
      const body = expectProblem(response, 400, 'validation_failed');
      expect(body.detail).toContain('not valid JSON');
      expect(body.errors).toEqual([]);
    });

    it('rejects an empty JSON body', async () => {
      expectProblem(await createToken(app(), { ...bearer(manager), 'content-type': 'application/json' }, ''), 400, 'validation_failed');
    });

    it('rejects a JSON body that is not an object', async () => {
      await expectRefused(['name', 'ok'], 'body');
      expectFieldError(await createToken(app(), { ...bearer(manager), 'content-type': 'application/json' }, '"ok"'), 'body');
    });

    it('answers 415 to a body that is not JSON', async () => {
      const response = await createToken(app(), { ...bearer(manager), 'content-type': 'text/plain' }, 'name=ok');
      expectProblem(response, 415, 'unsupported_media_type');
    });
  });

  describe('POST /api/v1/tokens accepted settings', () => {
    const app = useTestApp(open, 'block');
    let manager: string;
    beforeAll(async () => {
      manager = await ownerToken(app());
    });

    it('accepts a 64-character name made of every allowed character', async () => {
      const name = 'Az09 ._-'.repeat(8);
      const created = await issue(app(), manager, { name });
      expect(created.body.name).toBe(name);
    });

    it('stores IPv4 and IPv6 addresses and ranges normalised, once each', async () => {
      const t = app();
      const allowedIps = ['10.1.2.3', '10.1.2.3/32', '10.1.2.3/8', '192.168.0.0/16', '2001:DB8::1', '2001:db8:0:0:1::/64', '::1'];
      const expected = ['10.1.2.3/32', '10.0.0.0/8', '192.168.0.0/16', '2001:db8::1/128', '2001:db8::/64', '::1/128'];
      const created = await issue(t, manager, { name: 'office only', allowedIps });
      expect(created.body.allowedIps).toEqual(expected);
      expect(json(await getToken(t, bearer(manager), created.id)).allowedIps).toEqual(expected);
    });

    it('accepts metadata of exactly 4 KiB', async () => {
      const metadata = { note: 'x'.repeat(4096 - '{"note":""}'.length) };
      expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(4096);
      const created = await issue(app(), manager, { name: 'big metadata', metadata });
      expect(created.body.metadata).toEqual(metadata);
    });

    it('stores a rate limit, a quota with its refill, and metadata as given', async () => {
      const t = app();
      const settings = { rateLimit: { limit: 100, windowSeconds: 60 }, remaining: 1000, refill: { amount: 1000, interval: 'monthly' }, metadata: { team: 'infra', tags: ['a', 'b'], nested: { on: true } } };
      const created = await issue(t, manager, { name: 'metered', ...settings });
      expect(created.body).toMatchObject(settings);
      expect(json(await getToken(t, bearer(manager), created.id))).toMatchObject(settings);
    });

    it('keeps the ranking of the resources it is given', async () => {
      const t = app();
      const [a, b, c] = await addResources(t, manager, ['alpha', 'bravo', 'charlie']);
      const created = await issue(t, manager, { name: 'ranked', resources: [c, a, b] });
      expect(created.body.resources).toEqual([
        { id: c, type: 'network', name: 'charlie' },
        { id: a, type: 'network', name: 'alpha' },
        { id: b, type: 'network', name: 'bravo' },
      ]);
      expect(json(await getToken(t, bearer(manager), created.id)).resources.map((resource: { id: string }) => resource.id)).toEqual([c, a, b]);
    });

    it("accepts a wildcard scope within the caller's rights and stores it as asked", async () => {
      const created = await issue(app(), manager, { name: 'wildcard', scopes: ['tokens:*'] });
      expect(created.body.scopes).toEqual(['tokens:*']);
    });
  });

  describe('permission escalation', () => {
    const app = useTestApp(open);

    it("refuses a viewer any scope above the viewer role, wildcards included", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await addMember(t, manager, 'viewer@example.com', 'viewer');
      const asViewer = (name: string, scopes: string[]) => createToken(t, {}, { name, scopes, email: 'viewer@example.com', password: PASSWORD });

      for (const scopes of [['clearances:write'], ['tokens:manage'], ['scans:write'], ['scans:read', 'clearances:*']]) {
        const body = expectProblem(await asViewer('too much', scopes), 403, 'forbidden');
        expect(body.detail).toContain('above your own rights');
      }
      const allowed = json(await asViewer('enough', ['scans:read', 'clearances:read']));
      expect(allowed).toMatchObject({ scopes: ['scans:read', 'clearances:read'], permission: 'viewer' });
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(2);
    });

    it('refuses scopes the creating token does not hold, even ones its owner could grant', async () => {
      const t = app();
      const creator = await passwordToken(t, { name: 'narrow', scopes: ['tokens:write', 'scans:read'] });
      for (const scopes of [['scans:write'], ['tokens:manage'], ['scans:*']]) {
        expectProblem(await createToken(t, bearer(creator.token), { name: 'wider', scopes }), 403, 'forbidden');
      }
      await issue(t, creator.token, { name: 'same', scopes: ['scans:read'] });
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(2);
    });

    it("refuses a permission above the caller's role, or above the creating token's permission", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await addMember(t, manager, 'member@example.com', 'member');
      const asMember = await createToken(t, {}, { name: 'admin please', permission: 'admin', email: 'member@example.com', password: PASSWORD });
      expectProblem(asMember, 403, 'forbidden');

      const capped = await passwordToken(t, { name: 'capped', scopes: ['tokens:write'], permission: 'member' });
      expectProblem(await createToken(t, bearer(capped.token), { name: 'raised', scopes: [], permission: 'admin' }), 403, 'forbidden');
      const lower = await issue(t, capped.token, { name: 'lower', scopes: [], permission: 'viewer' });
      expect(lower.body.permission).toBe('viewer');
      const inherited = await issue(t, capped.token, { name: 'inherited', scopes: [] });
      expect(inherited.body.permission).toBe('member');
    });

    it("refuses a resource outside a limited member's, exactly as it refuses an unknown one", async () => {
      const t = app();
      const manager = await ownerToken(t);
      const [mine, theirs] = await addResources(t, manager, ['mine', 'theirs']);
      await addMember(t, manager, 'limited@example.com', 'member', { resources: [mine] });
      const asLimited = (name: string, resources: string[]) => createToken(t, {}, { name, scopes: ['scans:read'], resources, email: 'limited@example.com', password: PASSWORD });

      const outside = expectProblem(await asLimited('theirs', [theirs as string]), 403, 'forbidden');
      const unknown = expectProblem(await asLimited('unknown', ['res_doesNotExist0000']), 403, 'forbidden');
      expect(unknown.detail.replace('res_doesNotExist0000', '<id>')).toBe(outside.detail.replace(theirs as string, '<id>'));
      expectProblem(await asLimited('both', [mine as string, theirs as string]), 403, 'forbidden');

      const allowed = json(await asLimited('mine', [mine as string]));
      expect(allowed.resources).toEqual([{ id: mine, type: 'network', name: 'mine' }]);
    });

    it("refuses a PATCH that gives a token scopes the caller's token does not hold", async () => {
      const t = app();
      const editor = await passwordToken(t, { name: 'editor', scopes: ['tokens:write', 'scans:read'] });
      const target = await issue(t, editor.token, { name: 'target', scopes: ['scans:read'] });
      for (const scopes of [['scans:read', 'scans:write'], ['tokens:manage'], ['clearances:*']]) {
        expectProblem(await patchToken(t, bearer(editor.token), target.id, { scopes }), 403, 'forbidden');
      }
      expect((await storedToken(t, target.id)).scopes).toEqual(['scans:read']);
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
    });

    it("refuses a PATCH that gives a token scopes above its caller's role", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await addMember(t, manager, 'member@example.com', 'member');
      const own = await passwordToken(t, { name: 'own', scopes: ['tokens:write', 'scans:read'] }, 'member@example.com');
      for (const scopes of [['clearances:write'], ['members:manage'], ['tokens:manage']]) {
        expectProblem(await patchToken(t, bearer(own.token), own.id, { scopes }), 403, 'forbidden');
      }
      expect((await storedToken(t, own.id)).scopes).toEqual(['tokens:write', 'scans:read']);
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
    });

    it("refuses a PATCH that widens a token's resources beyond a limited member's", async () => {
      const t = app();
      const manager = await ownerToken(t);
      const [mine, theirs] = await addResources(t, manager, ['mine', 'theirs']);
      await addMember(t, manager, 'limited@example.com', 'member', { resources: [mine] });
      const own = await passwordToken(t, { name: 'own', scopes: ['tokens:write'], resources: [mine] }, 'limited@example.com');

      expectProblem(await patchToken(t, bearer(own.token), own.id, { resources: [mine, theirs] }), 403, 'forbidden');
      expectProblem(await patchToken(t, bearer(own.token), own.id, { resources: [theirs] }), 403, 'forbidden');
      expect((await storedToken(t, own.id)).resources.map((resource) => resource.id)).toEqual([mine]);
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
    });
  });

  describe('GET /api/v1/tokens', () => {
    const app = useTestApp(open);

    /** The owner's manager token plus one more, and a member with two tokens. */
    async function twoPeople(t: TestApp) {
      const manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
      const ownerSpare = await issue(t, manager.token, { name: 'spare', scopes: ['tokens:read'] });
      await addMember(t, manager.token, 'member@example.com', 'member');
      const member = await passwordToken(t, { name: 'member', scopes: ['tokens:read', 'tokens:write'] }, 'member@example.com');
      const memberSpare = await issue(t, member.token, { name: 'member spare', scopes: ['tokens:read'] });
      return { manager, ownerIds: [manager.id, ownerSpare.id], member, memberIds: [member.id, memberSpare.id] };
    }

    it("lists only the caller's own tokens by default", async () => {
      const t = app();
      const { manager, ownerIds, member, memberIds } = await twoPeople(t);
      expect((await listIds(t, bearer(manager.token))).sort()).toEqual([...ownerIds].sort());
      expect((await listIds(t, bearer(member.token))).sort()).toEqual([...memberIds].sort());
      expect((await listIds(t, bearer(member.token), '?all=false')).sort()).toEqual([...memberIds].sort());
    });

    it('lists every token of the organization with ?all=true and tokens:manage', async () => {
      const t = app();
      const { manager, ownerIds, memberIds } = await twoPeople(t);
      expect((await listIds(t, bearer(manager.token), '?all=true')).sort()).toEqual([...ownerIds, ...memberIds].sort());
    });

    it('answers 403 insufficient_scope to a token without any tokens scope', async () => {
      const t = app();
      const scanner = await passwordToken(t, { name: 'scanner', scopes: ['scans:read'] });
      const response = await listTokens(t, bearer(scanner.token));
      expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('scope="tokens:read"');
    });

    it('answers 403 insufficient_scope to ?all=true without tokens:manage', async () => {
      const t = app();
      const { member } = await twoPeople(t);
      const response = await listTokens(t, bearer(member.token), '?all=true');
      expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
      expect(response.headers['www-authenticate']).toContain('scope="tokens:manage"');
    });

    it('filters by status', async () => {
      const t = app();
      const manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
      const active = await issue(t, manager.token, { name: 'active', scopes: [] });
      const disabled = await issue(t, manager.token, { name: 'disabled', scopes: [] });
      const revoked = await issue(t, manager.token, { name: 'revoked', scopes: [] });
      const expired = await issue(t, manager.token, { name: 'expired', scopes: [], expiresInDays: 1 });
      expect((await patchToken(t, bearer(manager.token), disabled.id, { enabled: false })).statusCode).toBe(200);
      expect((await revokeToken(t, bearer(manager.token), revoked.id)).statusCode).toBe(204);
      t.clock.advance(DAY_MS);

      const headers = bearer(manager.token);
      expect((await listIds(t, headers, '?status=active')).sort()).toEqual([manager.id, active.id].sort());
      expect(await listIds(t, headers, '?status=disabled')).toEqual([disabled.id]);
      expect(await listIds(t, headers, '?status=revoked')).toEqual([revoked.id]);
      expect(await listIds(t, headers, '?status=expired')).toEqual([expired.id]);
      const statuses = json(await listTokens(t, headers)).items.map((item: { name: string; status: string }) => `${item.name}:${item.status}`);
      expect(statuses.sort()).toEqual(['active:active', 'disabled:disabled', 'expired:expired', 'manager:active', 'revoked:revoked']);
    });

    it('filters by kind', async () => {
      const t = app();
      const manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
      const client = await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(manager.token), payload: { name: 'customer-1' } });
      expect(client.statusCode, client.body).toBe(201);
      const service = await t.app.inject({ method: 'POST', url: `/api/v1/clients/${json(client).id}/tokens`, headers: bearer(manager.token), payload: { name: 'svc', scopes: ['tokens:read'] } });
      expect(service.statusCode, service.body).toBe(201);

      expect(await listIds(t, bearer(manager.token), '?all=true&kind=client')).toEqual([json(service).id]);
      expect(await listIds(t, bearer(manager.token), '?all=true&kind=personal')).toEqual([manager.id]);
      expect(await listIds(t, bearer(manager.token), '?kind=client')).toEqual([]);
    });

    it('walks every page with a cursor, newest first, without duplicates, ending with nextCursor null', async () => {
      const t = app();
      const manager = await ownerToken(t);
      // Some share their creation instant, so the id must break ties.
      for (let index = 0; index < 5; index += 1) {
        if (index % 2 === 0) t.clock.advance(1000);
        await issue(t, manager, { name: `page ${index}`, scopes: [] });
      }
      const everything = await listIds(t, bearer(manager));
      expect(everything).toHaveLength(6);

      const pages: Array<Array<{ id: string; createdAt: string }>> = [];
      let cursor: string | null = null;
      do {
        const query: string = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const response = await listTokens(t, bearer(manager), query);
        expect(response.statusCode, response.body).toBe(200);
        const page = json(response);
        pages.push(page.items);
        cursor = page.nextCursor;
      } while (cursor !== null && pages.length < 10);

      expect(pages.map((page) => page.length)).toEqual([2, 2, 2]);
      const walked = pages.flat();
      expect(walked.map((item) => item.id)).toEqual(everything);
      expect(new Set(walked.map((item) => item.id)).size).toBe(6);
      const times = walked.map((item) => item.createdAt);
      expect(times).toEqual([...times].sort().reverse());
    });

    it('rejects a cursor it did not issue with 400', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const forged = ['garbage', Buffer.from('yesterday|tok_abc').toString('base64url'), Buffer.from('2026-01-05T10:00:00.000Z').toString('base64url'), Buffer.from('2026-01-05T10:00:00.000Z|tok_a|more').toString('base64url'), ''];
      for (const cursor of forged) {
        expectFieldError(await listTokens(t, bearer(manager), `?cursor=${encodeURIComponent(cursor)}`), 'cursor');
      }
    });

    it('rejects a limit outside 1 to 100 with 400', async () => {
      const t = app();
      const manager = await ownerToken(t);
      for (const limit of ['0', '101', '-1', 'ten', '']) {
        expectFieldError(await listTokens(t, bearer(manager), `?limit=${limit}`), 'limit');
      }
      for (const limit of ['1', '100']) expect((await listTokens(t, bearer(manager), `?limit=${limit}`)).statusCode).toBe(200);
    });

    it('rejects an unknown query parameter or filter value with 400', async () => {
      const t = app();
      const manager = await ownerToken(t);
      expectFieldError(await listTokens(t, bearer(manager), '?owner=me'), 'owner');
      expectFieldError(await listTokens(t, bearer(manager), '?status=deleted'), 'status');
      expectFieldError(await listTokens(t, bearer(manager), '?kind=robot'), 'kind');
      expectFieldError(await listTokens(t, bearer(manager), '?all=yes'), 'all');
    });

    it('lists metadata only: never a plaintext, digest or other secret', async () => {
      const t = app();
      const manager = await passwordToken(t, { name: 'manager', scopes: MANAGEMENT_SCOPES });
      const other = await issue(t, manager.token, { name: 'other', scopes: ['tokens:read'], metadata: { team: 'infra' } });
      const response = await listTokens(t, bearer(manager.token));
      const body = json(response);
      expect(body.items).toHaveLength(2);
      for (const item of body.items) expect(Object.keys(item).sort()).toEqual(TOKEN_FIELDS);

      const digests = await t.database.db.selectFrom('tokens').select(['digest', 'secretVersion']).execute();
      for (const secret of [manager.token, other.token, ...digests.map((row) => row.digest)]) expect(response.body).not.toContain(secret);
      expect(response.body).not.toMatch(/digest|secret|passwordHash/i);
    });
  });

  describe('owner isolation on /api/v1/tokens/{id}', () => {
    const app = useTestApp(open);

    const operations = (id: string) => [
      { method: 'GET' as const, url: `/api/v1/tokens/${id}` },
      { method: 'PATCH' as const, url: `/api/v1/tokens/${id}`, payload: { name: 'taken over' } },
      { method: 'POST' as const, url: `/api/v1/tokens/${id}/rotate`, payload: { gracePeriodSeconds: 0 } },
      { method: 'DELETE' as const, url: `/api/v1/tokens/${id}` },
    ];

    /** Every operation on `id` must answer exactly what it answers for an id that never existed. */
    async function expectLikeMissing(t: TestApp, headers: Headers, id: string): Promise<void> {
      const missing = operations(MISSING_ID);
      for (const [index, operation] of operations(id).entries()) {
        const probed = notFoundBody(await t.app.inject({ ...operation, headers }));
        const absent = notFoundBody(await t.app.inject({ ...missing[index]!, headers }));
        expect(probed, `${operation.method} ${operation.url}`).toEqual(absent);
      }
    }

    async function expectUntouched(t: TestApp, id: string, name: string, organizationId = t.organizationId): Promise<void> {
      const token = await storedToken(t, id, organizationId);
      expect(token).toMatchObject({ name, revokedAt: null, rotatedAt: null, disabledAt: null });
      const events = await t.context.deps.store.listAuditEvents({ organizationId, limit: 100, targetId: id });
      expect(events.map((event) => event.action)).toEqual(['token.created']);
    }

    it("answers another member's token id exactly like a missing one, for GET, PATCH, rotate and DELETE", async () => {
      const t = app();
      const manager = await ownerToken(t);
      const target = await issue(t, manager, { name: 'owner only', scopes: ['tokens:read'] });
      await addMember(t, manager, 'member@example.com', 'member');
      const member = await passwordToken(t, { name: 'member', scopes: ['tokens:read', 'tokens:write'] }, 'member@example.com');

      await expectLikeMissing(t, bearer(member.token), target.id);
      await expectUntouched(t, target.id, 'owner only');
    });

    it("answers another organization's token id exactly like a missing one, even to tokens:manage", async () => {
      const t = app();
      const manager = await passwordToken(t, { name: 'acme manager', scopes: MANAGEMENT_SCOPES });
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(manager.token), payload: { name: 'Globex', slug: 'globex' } });
      expect(created.statusCode, created.body).toBe(201);
      const globexId = json(created).id;
      const globex = await passwordToken(t, { name: 'globex manager', scopes: MANAGEMENT_SCOPES, organization: 'globex' });
      expect(globex.body.organizationId).toBe(globexId);

      await expectLikeMissing(t, bearer(manager.token), globex.id);
      await expectLikeMissing(t, bearer(globex.token), manager.id);
      await expectUntouched(t, globex.id, 'globex manager', globexId);
      await expectUntouched(t, manager.id, 'acme manager');
      expect(await listIds(t, bearer(manager.token), '?all=true')).toEqual([manager.id]);
    });

    it("lets an admin see and manage a member's token in the same organization", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await addMember(t, manager, 'admin@example.com', 'admin');
      await addMember(t, manager, 'member@example.com', 'member');
      const admin = await passwordToken(t, { name: 'admin', scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'scans:read'] }, 'admin@example.com');
      const member = await passwordToken(t, { name: 'member', scopes: ['scans:read'] }, 'member@example.com');
      const headers = bearer(admin.token);

      expect(json(await getToken(t, headers, member.id))).toMatchObject({ id: member.id, name: 'member' });
      expect(await listIds(t, headers, '?all=true')).toContain(member.id);
      const renamed = await patchToken(t, headers, member.id, { name: 'renamed by admin' });
      expect(json(renamed)).toMatchObject({ name: 'renamed by admin', owner: { type: 'user', id: member.body.owner.id } });
      const rotated = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${member.id}/rotate`, headers, payload: { gracePeriodSeconds: 0 } });
      expect(rotated.statusCode, rotated.body).toBe(201);
      const successor = json(rotated).id;
      expect((await revokeToken(t, headers, successor)).statusCode).toBe(204);

      const events = [...(await auditActions(t, { targetId: member.id })), ...(await auditActions(t, { targetId: successor }))];
      const byAdmin = events.filter((event) => event.action !== 'token.created');
      expect(byAdmin.map((event) => event.action).sort()).toEqual(['token.revoked', 'token.rotated', 'token.updated']);
      for (const event of byAdmin) expect(event).toMatchObject({ actor: { type: 'token', id: admin.id }, authMethod: 'personal_token' });
    });
  });

  describe('GET /api/v1/tokens/current', () => {
    const app = useTestApp(open);

    it('introspects the calling token, whatever its scopes', async () => {
      const t = app();
      const caller = await passwordToken(t, { name: 'scanner', scopes: ['scans:read'] });
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(caller.token) });
      expect(response.statusCode, response.body).toBe(200);
      const body = json(response);
      expect(body).toMatchObject({ id: caller.id, name: 'scanner', scopes: ['scans:read'], owner: { type: 'user', id: t.ownerId }, status: 'active' });
      expect(Object.keys(body).sort()).toEqual([...TOKEN_FIELDS, 'effective'].sort());
      expect(body.effective).toEqual({ scopes: ['scans:read'], permission: 'owner', resources: null });
      expect(response.body).not.toContain(caller.token);
    });

    it('answers 404 to a console session, which has no token', async () => {
      const t = app();
      const session = await signIn(t);
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: session }), 404, 'not_found');
    });

    it('answers 401 without credentials', async () => {
      const t = app();
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current' });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    });
  });

  describe('PATCH /api/v1/tokens/{id}', () => {
    const app = useTestApp(open);

    async function changedFields(t: TestApp, id: string): Promise<string[][]> {
      const events = await auditActions(t, { targetId: id, action: 'token.updated' });
      return events.map((event) => [...(event.details.changed as string[])].sort());
    }

    it('renames a token and writes one token.updated event naming the field', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const target = await issue(t, manager, { name: 'old name', scopes: [] });
      const response = await patchToken(t, bearer(manager), target.id, { name: 'new name' });
      expect(response.statusCode, response.body).toBe(200);
      expect(json(response)).toMatchObject({ id: target.id, name: 'new name' });
      expect(json(response)).not.toHaveProperty('token');
      expect((await storedToken(t, target.id)).name).toBe('new name');
      expect(await changedFields(t, target.id)).toEqual([['name']]);
      const [event] = await auditActions(t, { targetId: target.id, action: 'token.updated' });
      expect(event).toMatchObject({ actor: { type: 'token' }, authMethod: 'personal_token' });
    });

    it('replaces the whole list of scopes', async () => {
      const t = app();
      const editor = await passwordToken(t, { name: 'editor', scopes: ['tokens:write', 'scans:read', 'scans:write', 'reports:read'] });
      const target = await issue(t, editor.token, { name: 'target', scopes: ['scans:read', 'scans:write'] });
      const response = await patchToken(t, bearer(editor.token), target.id, { scopes: ['reports:read'] });
      expect(json(response).scopes).toEqual(['reports:read']);
      expect((await storedToken(t, target.id)).scopes).toEqual(['reports:read']);
      expect(await changedFields(t, target.id)).toEqual([['scopes']]);
    });

    it('keeps the ranking of the resources it is given', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const [a, b, c] = (await addResources(t, manager, ['alpha', 'bravo', 'charlie'])) as [string, string, string];
      const target = await issue(t, manager, { name: 'ranked', scopes: [], resources: [a, b, c] });
      const ids = (response: LightMyRequestResponse) => json(response).resources.map((resource: { id: string }) => resource.id);

      expect(ids(await patchToken(t, bearer(manager), target.id, { resources: [c, a, b] }))).toEqual([c, a, b]);
      expect(ids(await getToken(t, bearer(manager), target.id))).toEqual([c, a, b]);
      expect(ids(await patchToken(t, bearer(manager), target.id, { resources: [b, c] }))).toEqual([b, c]);
      expect(ids(await getToken(t, bearer(manager), target.id))).toEqual([b, c]);
      expect(ids(await patchToken(t, bearer(manager), target.id, { resources: [] }))).toEqual([]);
      expect(await changedFields(t, target.id)).toEqual([['resources'], ['resources'], ['resources']]);
    });

    it('disables a token, which is then refused with 401 invalid_token, and enabling it restores it', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const target = await issue(t, manager, { name: 'switchable', scopes: ['tokens:read', 'tokens:write'] });

      const disabled = await patchToken(t, bearer(manager), target.id, { enabled: false });
      expect(json(disabled).status).toBe('disabled');
      expectInvalidToken(await listTokens(t, bearer(target.token)));
      expectInvalidToken(await getToken(t, bearer(target.token), target.id));
      expectInvalidToken(await createToken(t, bearer(target.token), { name: 'while disabled', scopes: [] }));
      expectInvalidToken(await patchToken(t, bearer(target.token), target.id, { enabled: true }));

      const enabled = await patchToken(t, bearer(manager), target.id, { enabled: true });
      expect(json(enabled).status).toBe('active');
      expect(await listIds(t, bearer(target.token))).toContain(target.id);
      expect(await changedFields(t, target.id)).toEqual([['enabled'], ['enabled']]);
    });

    it('changes allowedIps, rateLimit and metadata in one event that lists each field', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const target = await issue(t, manager, { name: 'settings', scopes: [], rateLimit: { limit: 1, windowSeconds: 1 } });
      const response = await patchToken(t, bearer(manager), target.id, { allowedIps: ['2001:DB8::/32', '10.9.8.7'], rateLimit: { limit: 50, windowSeconds: 10 }, metadata: { team: 'edge' } });
      expect(response.statusCode, response.body).toBe(200);
      expect(json(response)).toMatchObject({ allowedIps: ['2001:db8::/32', '10.9.8.7/32'], rateLimit: { limit: 50, windowSeconds: 10 }, metadata: { team: 'edge' } });
      expect(await changedFields(t, target.id)).toEqual([['allowedIps', 'metadata', 'rateLimit']]);

      const cleared = await patchToken(t, bearer(manager), target.id, { rateLimit: null, allowedIps: [] });
      expect(json(cleared)).toMatchObject({ rateLimit: null, allowedIps: [] });
    });

    it('writes no event when nothing changes', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const target = await issue(t, manager, { name: 'steady', scopes: ['tokens:read'], allowedIps: ['10.0.0.0/8'], metadata: { team: 'edge' } });
      const response = await patchToken(t, bearer(manager), target.id, {
        name: 'steady',
        enabled: true,
        scopes: ['tokens:read'],
        resources: [],
        allowedIps: ['10.0.0.0/8'],
        rateLimit: null,
        metadata: { team: 'edge' },
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(await changedFields(t, target.id)).toEqual([]);
    });

    it('answers 409 to a change of a revoked or expired token', async () => {
      const t = app();
      const manager = await ownerToken(t);
      const revoked = await issue(t, manager, { name: 'revoked', scopes: [] });
      const expiring = await issue(t, manager, { name: 'expiring', scopes: [], expiresInDays: 1 });
      expect((await revokeToken(t, bearer(manager), revoked.id)).statusCode).toBe(204);
      t.clock.advance(DAY_MS);

      expectProblem(await patchToken(t, bearer(manager), revoked.id, { name: 'revived' }), 409, 'conflict');
      expectProblem(await patchToken(t, bearer(manager), revoked.id, { enabled: true }), 409, 'conflict');
      expectProblem(await patchToken(t, bearer(manager), expiring.id, { name: 'renewed' }), 409, 'conflict');
      expect((await storedToken(t, revoked.id)).name).toBe('revoked');
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
    });

    it("answers 409 to a rename onto another live token's name", async () => {
      const t = app();
      const manager = await ownerToken(t);
      await issue(t, manager, { name: 'taken', scopes: [] });
      const target = await issue(t, manager, { name: 'free', scopes: [] });
      expectProblem(await patchToken(t, bearer(manager), target.id, { name: 'taken' }), 409, 'conflict');
      expect((await storedToken(t, target.id)).name).toBe('free');
    });
  });

  describe('PATCH /api/v1/tokens/{id} validation', () => {
    const app = useTestApp(open, 'block');
    let manager: string;
    let target: { id: string };
    beforeAll(async () => {
      manager = await ownerToken(app());
      target = await issue(app(), manager, { name: 'target', scopes: ['tokens:read'] });
    });

    it.each<{ what: string; payload: Payload; field: string }>([
      { what: 'an empty change', payload: {}, field: 'body' },
      { what: 'an unknown field', payload: { owner: 'someone' }, field: 'owner' },
      { what: 'expiresInDays, which only creation takes', payload: { expiresInDays: 5 }, field: 'expiresInDays' },
      { what: 'permission, which only creation takes', payload: { permission: 'viewer' }, field: 'permission' },
      { what: 'a name outside the pattern', payload: { name: 'a/b' }, field: 'name' },
      { what: 'a scope missing from the catalog', payload: { scopes: ['tokens:read', 'tokens:delete'] }, field: 'scopes/1' },
      { what: 'a repeated scope', payload: { scopes: ['tokens:read', 'tokens:read'] }, field: 'scopes' },
      { what: 'an unknown resource', payload: { resources: ['res_doesNotExist0000'] }, field: 'resources/0' },
      { what: 'a repeated resource', payload: { resources: ['res_same', 'res_same'] }, field: 'resources' },
      { what: 'enabled that is not a boolean', payload: { enabled: 'no' }, field: 'enabled' },
      { what: 'an allowed IP that is not one', payload: { allowedIps: ['10.0.0.0/40'] }, field: 'allowedIps/0' },
      { what: 'a rate limit of the wrong shape', payload: { rateLimit: { limit: '10', windowSeconds: 60 } }, field: 'rateLimit/limit' },
      { what: 'metadata over 4 KiB', payload: { metadata: { note: 'x'.repeat(5000) } }, field: 'metadata' },
    ])('rejects $what', async ({ payload, field }) => {
      const t = app();
      expectFieldError(await patchToken(t, bearer(manager), target.id, payload), field);
      expect(await storedToken(t, target.id)).toMatchObject({ name: 'target', scopes: ['tokens:read'], resources: [], metadata: {}, disabledAt: null });
      expect(await auditActions(t, { action: 'token.updated' })).toHaveLength(0);
    });

    it('rejects a body that is not valid JSON', async () => {
      const response = await patchToken(app(), { ...bearer(manager), 'content-type': 'application/json' }, target.id, '{"name":');
      expectProblem(response, 400, 'validation_failed');
    });
  });
});
