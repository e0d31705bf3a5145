import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, json, OWNER_EMAIL, PASSWORD, passwordToken, type TestApp } from '../../testing/test-app.ts';

const MANAGEMENT_SCOPES = ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read'];
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

describeEachDialect('organization routes', (open) => {
  let t: TestApp;
  let owner: string;
  let ownerTokenId: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    // Apart from the organization's creation, so the trail has one order.
    t.clock.advance(1000);
    const created = await passwordToken(t, { name: 'owner management', scopes: MANAGEMENT_SCOPES });
    owner = created.token;
    ownerTokenId = created.id;
  });
  afterEach(async () => {
    await t.close();
  });

  function request(headers: Record<string, string>, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) {
    return t.app.inject({ method, url, headers, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}) });
  }
  async function createOrganization(name: string, slug: string, token = owner): Promise<Record<string, any>> {
    const response = await request(bearer(token), 'POST', '/api/v1/organizations', { name, slug });
    expect(response.statusCode).toBe(201);
    return json(response);
  }
  async function setPolicy(tokenPolicy: Record<string, unknown>): Promise<void> {
    const response = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', { tokenPolicy });
    expect(response.statusCode).toBe(200);
  }
  function createToken(body: Record<string, unknown>) {
    return request(bearer(owner), 'POST', '/api/v1/tokens', { name: `t-${Math.random().toString(36).slice(2, 10)}`, scopes: ['tokens:read'], ...body });
  }
  async function signIn(email = OWNER_EMAIL, password = PASSWORD): Promise<{ cookie: string; csrfToken: string }> {
    const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
    expect(response.statusCode).toBe(200);
    const cookie = response.cookies.find((candidate) => candidate.name === 'keyward_session');
    if (!cookie) throw new Error('no session cookie');
    return { cookie: `keyward_session=${cookie.value}`, csrfToken: json(response).csrfToken };
  }
  async function audit(query: string, token = owner): Promise<Record<string, any>> {
    const response = await request(bearer(token), 'GET', `/api/v1/audit${query}`);
    expect(response.statusCode).toBe(200);
    return json(response);
  }

  describe('POST /api/v1/organizations', () => {
    it('creates an organization with the caller as its owner', async () => {
      const org = await createOrganization('Globex Corporation', 'globex');
      expect(org).toEqual({
        id: expect.stringMatching(/^org_[0-9A-Za-z]+$/),
        name: 'Globex Corporation',
        slug: 'globex',
        tokenPolicy: { maxLifetimeDays: 365, allowNoExpiry: false, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: null },
        createdAt: t.clock.now().toISOString(),
      });

      const there = await passwordToken(t, { organization: 'globex', scopes: ['members:manage', 'audit:read'] });
      expect(there.body).toMatchObject({ organizationId: org.id, permission: 'owner' });
      const members = json(await request(bearer(there.token), 'GET', '/api/v1/members'));
      expect(members.items).toEqual([expect.objectContaining({ userId: t.ownerId, role: 'owner', resources: null })]);

      const events = await audit('?action=organization.created', there.token);
      expect(events.items).toEqual([
        expect.objectContaining({ organizationId: org.id, actor: { type: 'token', id: ownerTokenId }, authMethod: 'personal_token', target: { type: 'organization', id: org.id } }),
      ]);
      // The new organization's trail is not mixed into the old one.
      expect((await audit('?action=organization.created')).items.map((event: { organizationId: string }) => event.organizationId)).toEqual([t.organizationId]);
    });

    it('answers 409 for a slug that is taken', async () => {
      const taken = await request(bearer(owner), 'POST', '/api/v1/organizations', { name: 'Another Acme', slug: 'acme' });
      expect(taken.statusCode).toBe(409);
      expect(json(taken).code).toBe('conflict');
      expect(await auditActions(t, { action: 'organization.created' })).toHaveLength(1);
    });

    it('rejects unknown fields, malformed slugs and empty names field by field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: 'Globex', slug: 'globex', tokenPolicy: { allowNoExpiry: true } }, 'tokenPolicy'],
        [{ name: 'Globex', slug: 'Globex Corp' }, 'slug'],
        [{ name: 'Globex', slug: '-globex' }, 'slug'],
        [{ name: 'Globex', slug: 'g'.repeat(41) }, 'slug'],
        [{ name: '', slug: 'globex' }, 'name'],
        [{ name: 'Globex' }, 'slug'],
      ];
      for (const [payload, field] of cases) {
        const response = await request(bearer(owner), 'POST', '/api/v1/organizations', payload);
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(json(response).code).toBe('validation_failed');
        expect(json(response).errors).toEqual([expect.objectContaining({ field })]);
      }
    });

    it('needs a person: a service token answers 403, a token without tokens:write 403 insufficient_scope', async () => {
      const client = json(await request(bearer(owner), 'POST', '/api/v1/clients', { name: 'acme-eu' }));
      const svc = json(await request(bearer(owner), 'POST', `/api/v1/clients/${client.id}/tokens`, { name: 'svc', scopes: ['members:manage'] }));
      const byService = await request(bearer(svc.token), 'POST', '/api/v1/organizations', { name: 'Globex', slug: 'globex' });
      expect(byService.statusCode).toBe(403);
      expect(json(byService).code).toBe('forbidden');

      const readOnly = (await passwordToken(t, { scopes: ['tokens:read'] })).token;
      const byReader = await request(bearer(readOnly), 'POST', '/api/v1/organizations', { name: 'Globex', slug: 'globex' });
      expect(byReader.statusCode).toBe(403);
      expect(json(byReader).code).toBe('insufficient_scope');
      expect(await auditActions(t, { action: 'organization.created' })).toHaveLength(1);
    });
  });

  describe('GET and PATCH /api/v1/organizations/current', () => {
    it("answers the token's organization with its policy to any valid token", async () => {
      const scansOnly = (await passwordToken(t, { scopes: ['scans:read'] })).token;
      const response = await request(bearer(scansOnly), 'GET', '/api/v1/organizations/current');
      expect(response.statusCode).toBe(200);
      expect(json(response)).toEqual({
        id: t.organizationId,
        name: 'Acme',
        slug: 'acme',
        tokenPolicy: { maxLifetimeDays: 365, allowNoExpiry: false, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: null },
        createdAt: new Date(t.clock.now().getTime() - 1000).toISOString(),
      });
    });

    it('acts in the organization of a bearer token, whatever X-Keyward-Organization says', async () => {
      await createOrganization('Globex', 'globex');
      const response = await request({ ...bearer(owner), 'x-keyward-organization': 'globex' }, 'GET', '/api/v1/organizations/current');
      expect(response.statusCode).toBe(200);
      expect(json(response).slug).toBe('acme');
    });

    it('changes the name and merges a partial token policy, and records it', async () => {
      const renamed = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', { name: 'Acme Inc.', tokenPolicy: { maxLifetimeDays: 90 } });
      expect(renamed.statusCode).toBe(200);
      expect(json(renamed)).toMatchObject({ name: 'Acme Inc.', slug: 'acme', tokenPolicy: { maxLifetimeDays: 90, allowNoExpiry: false, requireIpAllowlist: false } });

      const policy = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', { tokenPolicy: { allowNoExpiry: true } });
      expect(json(policy).tokenPolicy).toEqual({ maxLifetimeDays: 90, allowNoExpiry: true, requireIpAllowlist: false, revokeUnusedAfterDays: null, retentionDays: null });
      expect(json(await request(bearer(owner), 'GET', '/api/v1/organizations/current'))).toMatchObject({ name: 'Acme Inc.', tokenPolicy: { maxLifetimeDays: 90, allowNoExpiry: true } });

      const events = await auditActions(t, { action: 'organization.updated' });
      expect(events).toHaveLength(2);
      expect(events.map((event) => event.details.tokenPolicy)).toContainEqual({ maxLifetimeDays: 90 });
    });

    it('sets and clears the unused-token and retention policy', async () => {
      const set = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', { tokenPolicy: { revokeUnusedAfterDays: 90, retentionDays: 400 } });
      expect(set.statusCode).toBe(200);
      expect(json(set).tokenPolicy).toMatchObject({ maxLifetimeDays: 365, revokeUnusedAfterDays: 90, retentionDays: 400 });
      const cleared = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', { tokenPolicy: { revokeUnusedAfterDays: null } });
      expect(json(cleared).tokenPolicy).toMatchObject({ revokeUnusedAfterDays: null, retentionDays: 400 });
      expect(json(await request(bearer(owner), 'GET', '/api/v1/organizations/current')).tokenPolicy).toMatchObject({ revokeUnusedAfterDays: null, retentionDays: 400 });
    });

    it('rejects an empty change, unknown fields and lifetimes out of range', async () => {
      const cases: Array<[Record<string, unknown>, string | null]> = [
        [{}, null],
        [{ tokenPolicy: {} }, null],
        [{ slug: 'other' }, 'slug'],
        [{ tokenPolicy: { maxLifetimeDays: 30, neverExpire: true } }, 'tokenPolicy/neverExpire'],
        [{ tokenPolicy: { maxLifetimeDays: 0 } }, 'tokenPolicy/maxLifetimeDays'],
        [{ tokenPolicy: { maxLifetimeDays: 3651 } }, 'tokenPolicy/maxLifetimeDays'],
        [{ tokenPolicy: { maxLifetimeDays: 1.5 } }, 'tokenPolicy/maxLifetimeDays'],
        [{ tokenPolicy: { requireIpAllowlist: 'yes' } }, 'tokenPolicy/requireIpAllowlist'],
        [{ tokenPolicy: { revokeUnusedAfterDays: 0 } }, 'tokenPolicy/revokeUnusedAfterDays'],
        [{ tokenPolicy: { revokeUnusedAfterDays: '30' } }, 'tokenPolicy/revokeUnusedAfterDays'],
        [{ tokenPolicy: { retentionDays: 7 } }, 'tokenPolicy/retentionDays'],
        [{ tokenPolicy: { retentionDays: 3651 } }, 'tokenPolicy/retentionDays'],
      ];
      for (const [payload, field] of cases) {
        const response = await request(bearer(owner), 'PATCH', '/api/v1/organizations/current', payload);
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(json(response).code).toBe('validation_failed');
        if (field) expect(json(response).errors).toEqual([expect.objectContaining({ field })]);
      }
      expect(await auditActions(t, { action: 'organization.updated' })).toEqual([]);
    });

    it('answers 403 insufficient_scope to a member without members:manage', async () => {
      await addMember(t, owner, 'mia@example.com', 'member');
      const member = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'mia@example.com')).token;
      const response = await request(bearer(member), 'PATCH', '/api/v1/organizations/current', { tokenPolicy: { allowNoExpiry: true } });
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('scope="members:manage"');
      expect(json(await request(bearer(member), 'GET', '/api/v1/organizations/current')).tokenPolicy.allowNoExpiry).toBe(false);
    });
  });

  describe('the token policy', () => {
    it('caps expiresInDays at maxLifetimeDays, for personal and service tokens alike', async () => {
      await setPolicy({ maxLifetimeDays: 30 });
      const tooLong = await createToken({ expiresInDays: 31 });
      expect(tooLong.statusCode).toBe(400);
      expect(json(tooLong)).toMatchObject({ code: 'validation_failed', errors: [{ field: 'expiresInDays', message: expect.stringContaining('1 to 30') }] });

      const longest = await createToken({ expiresInDays: 30 });
      expect(longest.statusCode).toBe(201);
      expect(json(longest).expiresAt).toBe(new Date(t.clock.now().getTime() + 30 * DAY_MS).toISOString());

      await setPolicy({ maxLifetimeDays: 7 });
      const byDefault = await createToken({});
      expect(json(byDefault).expiresAt).toBe(new Date(t.clock.now().getTime() + 7 * DAY_MS).toISOString());

      const client = json(await request(bearer(owner), 'POST', '/api/v1/clients', { name: 'acme-eu' }));
      const service = await request(bearer(owner), 'POST', `/api/v1/clients/${client.id}/tokens`, { name: 'svc', expiresInDays: 8 });
      expect(service.statusCode).toBe(400);
      expect(json(service).errors).toEqual([expect.objectContaining({ field: 'expiresInDays' })]);
    });

    it('refuses never-expiring tokens unless allowNoExpiry is set', async () => {
      const refused = await createToken({ expiresInDays: null });
      expect(refused.statusCode).toBe(400);
      expect(json(refused).errors).toEqual([expect.objectContaining({ field: 'expiresInDays' })]);

      await setPolicy({ allowNoExpiry: true });
      // A person may now; the owner's token, which expires, may not make one that never does.
      expect((await createToken({ expiresInDays: null })).statusCode).toBe(403);
      const forever = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'forever', email: OWNER_EMAIL, password: PASSWORD, scopes: ['tokens:read'], expiresInDays: null } });
      expect(forever.statusCode).toBe(201);
      expect(json(forever).expiresAt).toBeNull();
    });

    it('makes allowedIps mandatory when requireIpAllowlist is set, on creation and on change', async () => {
      const before = await createToken({});
      expect(before.statusCode).toBe(201);
      await setPolicy({ requireIpAllowlist: true });

      const without = await createToken({});
      expect(without.statusCode).toBe(400);
      expect(json(without).errors).toEqual([{ field: 'allowedIps', message: 'this organization requires an IP allowlist on every token' }]);

      const withList = await createToken({ allowedIps: ['10.0.0.0/8'] });
      expect(withList.statusCode).toBe(201);
      expect(json(withList).allowedIps).toEqual(['10.0.0.0/8']);

      const cleared = await request(bearer(owner), 'PATCH', `/api/v1/tokens/${json(withList).id}`, { allowedIps: [] });
      expect(cleared.statusCode).toBe(400);
      expect(json(cleared).errors).toEqual([expect.objectContaining({ field: 'allowedIps' })]);
    });
  });

  describe('console sessions and X-Keyward-Organization', () => {
    it('acts in the first organization by default and switches by id or slug', async () => {
      t.clock.advance(1000);
      const globex = await createOrganization('Globex', 'globex');
      const session = await signIn();

      const byDefault = await request({ cookie: session.cookie }, 'GET', '/api/v1/organizations/current');
      expect(byDefault.statusCode).toBe(200);
      expect(json(byDefault).id).toBe(t.organizationId);

      for (const ref of [globex.id, 'globex']) {
        const switched = await request({ cookie: session.cookie, 'x-keyward-organization': ref }, 'GET', '/api/v1/organizations/current');
        expect(switched.statusCode).toBe(200);
        expect(json(switched).id).toBe(globex.id);
      }

      const changed = await request({ cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'x-keyward-organization': 'globex' }, 'PATCH', '/api/v1/organizations/current', { name: 'Globex Renamed' });
      expect(changed.statusCode).toBe(200);
      expect(json(changed)).toMatchObject({ id: globex.id, name: 'Globex Renamed' });
      expect(json(await request(bearer(owner), 'GET', '/api/v1/organizations/current')).name).toBe('Acme');
      const event = (await t.context.deps.store.listAuditEvents({ organizationId: globex.id, action: 'organization.updated', limit: 10 }))[0];
      expect(event).toMatchObject({ actor: { type: 'user', id: t.ownerId }, authMethod: 'session', organizationId: globex.id });
    });

    it('refuses (403) a member without members:manage who tries to create an organization', async () => {
      await addMember(t, owner, 'viewer@example.com', 'viewer');
      const viewer = (await passwordToken(t, { scopes: ['tokens:write'] }, 'viewer@example.com')).token;
      const refused = await request(bearer(viewer), 'POST', '/api/v1/organizations', { name: 'Evil', slug: 'evil' });
      expect(refused.statusCode).toBe(403);
      expect(json(refused).code).toBe('insufficient_scope');
    });

    it('answers 404 for an unknown organization and for one the person does not belong to', async () => {
      await addMember(t, owner, 'mia@example.com', 'admin');
      const mia = (await passwordToken(t, { scopes: ['members:manage'] }, 'mia@example.com')).token;
      const initech = await createOrganization('Initech', 'initech', mia);
      const session = await signIn();

      for (const ref of ['nope', 'org_doesnotexist', 'initech', initech.id]) {
        const response = await request({ cookie: session.cookie, 'x-keyward-organization': ref }, 'GET', '/api/v1/organizations/current');
        expect(response.statusCode, ref).toBe(404);
        expect(json(response).code).toBe('not_found');
      }
    });

    it('needs the CSRF token of the session for a change', async () => {
      const session = await signIn();
      const response = await request({ cookie: session.cookie }, 'PATCH', '/api/v1/organizations/current', { name: 'Forged' });
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('forbidden');
      expect(json(await request(bearer(owner), 'GET', '/api/v1/organizations/current')).name).toBe('Acme');
    });
  });

  describe('GET /api/v1/audit', () => {
    async function scenario() {
      t.clock.advance(HOUR_MS);
      const client = json(await request(bearer(owner), 'POST', '/api/v1/clients', { name: 'acme-eu' }));
      t.clock.advance(HOUR_MS);
      const resource = json(await request(bearer(owner), 'POST', '/api/v1/resources', { type: 'network', name: 'lab' }));
      t.clock.advance(HOUR_MS);
      await request(bearer(owner), 'PATCH', `/api/v1/clients/${client.id}`, { description: 'EU' });
      return { clientId: client.id as string, resourceId: resource.id as string, start: new Date(t.clock.now().getTime() - 3 * HOUR_MS) };
    }

    it('answers the events of the organization newest first, in the documented shape', async () => {
      await scenario();
      const page = await audit('');
      expect(page.items.map((event: { action: string }) => event.action)).toEqual(['client.updated', 'resource.created', 'client.created', 'token.created', 'organization.created']);
      expect(page.nextCursor).toBeNull();
      expect(page.items[0]).toEqual({
        id: expect.stringMatching(/^evt_/),
        at: t.clock.now().toISOString(),
        action: 'client.updated',
        actor: { type: 'token', id: ownerTokenId },
        authMethod: 'personal_token',
        organizationId: t.organizationId,
        target: { type: 'client', id: expect.any(String) },
        ip: '127.0.0.1',
        userAgent: 'lightMyRequest',
        requestId: expect.any(String),
        details: expect.objectContaining({ userId: t.ownerId }),
      });
    });

    it('filters by action, actor, target and time', async () => {
      const { clientId, resourceId, start } = await scenario();
      const actions = (page: Record<string, any>) => page.items.map((event: { action: string }) => event.action);

      expect(actions(await audit('?action=client.created'))).toEqual(['client.created']);
      expect(actions(await audit(`?actor=${ownerTokenId}`))).toEqual(['client.updated', 'resource.created', 'client.created']);
      expect(actions(await audit(`?actor=${t.ownerId}`))).toEqual(['token.created']);
      expect(actions(await audit(`?target=${clientId}`))).toEqual(['client.updated', 'client.created']);
      expect(actions(await audit(`?target=${resourceId}&action=client.created`))).toEqual([]);

      const since = new Date(start.getTime() + HOUR_MS).toISOString();
      const until = new Date(start.getTime() + 3 * HOUR_MS).toISOString();
      // since is inclusive, until exclusive.
      expect(actions(await audit(`?since=${since}&until=${until}`))).toEqual(['resource.created', 'client.created']);
      expect(actions(await audit(`?since=${until}`))).toEqual(['client.updated']);
      expect(actions(await audit(`?until=${since}`))).toEqual(['token.created', 'organization.created']);
    });

    it('pages with an opaque cursor until nextCursor is null', async () => {
      await scenario();
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Record<string, any> = await audit(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((event: { action: string }) => event.action));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(['client.updated', 'resource.created', 'client.created', 'token.created', 'organization.created']);

      for (const query of ['?cursor=bm90LWEtY3Vyc29y', '?limit=0', '?limit=101', '?since=yesterday', '?order=asc']) {
        const response = await request(bearer(owner), 'GET', `/api/v1/audit${query}`);
        expect(response.statusCode, query).toBe(400);
        expect(json(response).code).toBe('validation_failed');
      }
    });

    it('never contains a secret', async () => {
      const created = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] });
      const rotated = json(await request(bearer(owner), 'POST', `/api/v1/tokens/${created.id}/rotate`, { gracePeriodSeconds: 60 }));
      const invited = json(await request(bearer(owner), 'POST', '/api/v1/members', { email: 'bob@example.com', role: 'viewer' }));
      const inviteToken = String(invited.inviteUrl).split('#')[1] ?? '';
      await request({}, 'POST', '/api/v1/auth/accept-invite', { inviteToken, password: 'bobs very own password' });
      await request({}, 'POST', '/api/v1/auth/login', { email: OWNER_EMAIL, password: 'a wrong guess at it' });
      await request(bearer(owner), 'POST', '/api/v1/tokens/revoke-leaked', { tokens: [rotated.token] });

      const body = JSON.stringify((await audit('?limit=100')).items);
      expect(body).toContain('token.leak_reported');
      expect(body).toContain('auth.login_failed');
      for (const secret of [owner, created.token, rotated.token, inviteToken, PASSWORD, 'bobs very own password', 'a wrong guess at it']) {
        expect(body).not.toContain(secret);
      }
      for (const event of await auditActions(t)) {
        expect(JSON.stringify(event)).not.toMatch(/kw_(pat|svc)_[0-9A-Za-z]{20}/);
      }
    });

    it('answers 403 insufficient_scope without audit:read', async () => {
      const noAudit = (await passwordToken(t, { scopes: ['tokens:manage', 'members:manage'] })).token;
      const response = await request(bearer(noAudit), 'GET', '/api/v1/audit');
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('scope="audit:read"');

      const anonymous = await request({}, 'GET', '/api/v1/audit');
      expect(anonymous.statusCode).toBe(401);
    });
  });
});
