import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('API client routes', (open) => {
  let t: TestApp;
  let owner: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    // The management scopes, and one deployment scope to hand out.
    owner = await ownerToken(t, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'members:manage', 'audit:read', 'scans:read'], expiresInDays: 365 });
  });
  afterEach(async () => {
    await t.close();
  });

  function request(token: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) {
    return t.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
  }
  async function createClient(name: string, token = owner): Promise<string> {
    const response = await request(token, 'POST', '/api/v1/clients', { name });
    expect(response.statusCode).toBe(201);
    return json(response).id as string;
  }
  async function serviceToken(clientId: string, body: Record<string, unknown> = {}, token = owner): Promise<{ token: string; id: string; body: Record<string, any> }> {
    const response = await request(token, 'POST', `/api/v1/clients/${clientId}/tokens`, { name: 'svc', ...body });
    expect(response.statusCode).toBe(201);
    const created = json(response);
    return { token: created.token, id: created.id, body: created };
  }

  describe('POST /api/v1/clients', () => {
    it('creates an API client and records it', async () => {
      const response = await request(owner, 'POST', '/api/v1/clients', { name: 'acme-eu', description: 'EU customer instance' });
      expect(response.statusCode).toBe(201);
      const client = json(response);
      expect(client).toEqual({
        id: expect.stringMatching(/^cli_[0-9A-Za-z]+$/),
        name: 'acme-eu',
        description: 'EU customer instance',
        organizationId: t.organizationId,
        rateLimit: null,
        createdAt: t.clock.now().toISOString(),
      });
      const audit = await auditActions(t, { targetId: client.id });
      expect(audit.map((event) => event.action)).toEqual(['client.created']);
      expect(audit[0]?.details).toMatchObject({ name: 'acme-eu' });
    });

    it('answers 409 for a name a live client already has, and frees the name of a deleted one', async () => {
      const first = await createClient('acme-eu');
      const duplicate = await request(owner, 'POST', '/api/v1/clients', { name: 'acme-eu' });
      expect(duplicate.statusCode).toBe(409);
      expect(json(duplicate).code).toBe('conflict');

      expect((await request(owner, 'DELETE', `/api/v1/clients/${first}`)).statusCode).toBe(204);
      const again = await request(owner, 'POST', '/api/v1/clients', { name: 'acme-eu' });
      expect(again.statusCode).toBe(201);
      expect(json(again).id).not.toBe(first);
    });

    it('rejects unknown fields, a malformed name and an overlong description field by field', async () => {
      const unknown = await request(owner, 'POST', '/api/v1/clients', { name: 'acme-eu', quota: 10 });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown)).toMatchObject({ code: 'validation_failed', errors: [{ field: 'quota', message: 'is not a known field' }] });

      const name = await request(owner, 'POST', '/api/v1/clients', { name: 'acme/eu' });
      expect(name.statusCode).toBe(400);
      expect(json(name).errors).toEqual([expect.objectContaining({ field: 'name' })]);

      const description = await request(owner, 'POST', '/api/v1/clients', { name: 'acme-eu', description: 'x'.repeat(501) });
      expect(description.statusCode).toBe(400);
      expect(json(description).errors).toEqual([expect.objectContaining({ field: 'description' })]);

      const listed = await request(owner, 'GET', '/api/v1/clients');
      expect(json(listed).items).toEqual([]);
    });
  });

  describe('GET, PATCH and DELETE /api/v1/clients/:id', () => {
    it('lists the live clients newest first, and reads one', async () => {
      const eu = await createClient('acme-eu');
      t.clock.advance(1000);
      const us = await createClient('acme-us');
      const page = await request(owner, 'GET', '/api/v1/clients?limit=1');
      expect(json(page).items.map((c: { id: string }) => c.id)).toEqual([us]);
      const next = await request(owner, 'GET', `/api/v1/clients?limit=1&cursor=${json(page).nextCursor}`);
      expect(json(next)).toEqual({ items: [expect.objectContaining({ id: eu, name: 'acme-eu', description: null })], nextCursor: null });

      const one = await request(owner, 'GET', `/api/v1/clients/${eu}`);
      expect(one.statusCode).toBe(200);
      expect(json(one)).toMatchObject({ id: eu, name: 'acme-eu' });
    });

    it('renames and describes a client, refusing a name another client has', async () => {
      const eu = await createClient('acme-eu');
      await createClient('acme-us');
      const changed = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, { name: 'acme-europe', description: 'Frankfurt' });
      expect(changed.statusCode).toBe(200);
      expect(json(changed)).toMatchObject({ id: eu, name: 'acme-europe', description: 'Frankfurt' });

      const cleared = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, { description: null });
      expect(json(cleared)).toMatchObject({ name: 'acme-europe', description: null });
      // Keeping its own name is not a conflict.
      const same = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, { name: 'acme-europe' });
      expect(same.statusCode).toBe(200);

      const taken = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, { name: 'acme-us' });
      expect(taken.statusCode).toBe(409);
      expect(json(taken).code).toBe('conflict');
      expect(json(await request(owner, 'GET', `/api/v1/clients/${eu}`)).name).toBe('acme-europe');

      const audit = await auditActions(t, { targetId: eu, action: 'client.updated' });
      expect(audit).toHaveLength(3);
    });

    it('rejects an empty change and unknown fields', async () => {
      const eu = await createClient('acme-eu');
      const empty = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, {});
      expect(empty.statusCode).toBe(400);
      expect(json(empty).code).toBe('validation_failed');
      const unknown = await request(owner, 'PATCH', `/api/v1/clients/${eu}`, { organizationId: 'org_other' });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown).errors).toEqual([{ field: 'organizationId', message: 'is not a known field' }]);
      expect(await auditActions(t, { action: 'client.updated' })).toEqual([]);
    });

    it('revokes the tokens of a deleted client, which are refused at once', async () => {
      const eu = await createClient('acme-eu');
      const first = await serviceToken(eu, { name: 'one', scopes: ['clients:manage'] });
      t.clock.advance(1000);
      const second = await serviceToken(eu, { name: 'two', scopes: ['scans:read'] });
      const other = await serviceToken(await createClient('acme-us'), { name: 'other', scopes: ['clients:manage'] });
      expect((await request(first.token, 'GET', '/api/v1/clients')).statusCode).toBe(200);

      const deleted = await request(owner, 'DELETE', `/api/v1/clients/${eu}`);
      expect(deleted.statusCode).toBe(204);

      for (const token of [first.token, second.token]) {
        const refused = await request(token, 'GET', '/api/v1/tokens/current');
        expect(refused.statusCode).toBe(401);
        expect(json(refused).code).toBe('unauthenticated');
        expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
      }
      for (const id of [first.id, second.id]) {
        expect(json(await request(owner, 'GET', `/api/v1/tokens/${id}`)).status).toBe('revoked');
      }
      // Another client's tokens are untouched.
      expect((await request(other.token, 'GET', '/api/v1/clients')).statusCode).toBe(200);

      for (const [method, url] of [
        ['GET', `/api/v1/clients/${eu}`],
        ['PATCH', `/api/v1/clients/${eu}`],
        ['DELETE', `/api/v1/clients/${eu}`],
        ['GET', `/api/v1/clients/${eu}/tokens`],
        ['POST', `/api/v1/clients/${eu}/tokens`],
      ] as const) {
        const response = await request(owner, method, url, method === 'PATCH' ? { description: 'x' } : method === 'POST' ? { name: 'late' } : undefined);
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        expect(json(response).code).toBe('not_found');
      }
      expect(json(await request(owner, 'GET', '/api/v1/clients')).items.map((c: { id: string }) => c.id)).not.toContain(eu);

      const audit = await auditActions(t, { targetId: eu, action: 'client.deleted' });
      expect(audit).toHaveLength(1);
      expect(audit[0]?.details).toMatchObject({ revokedTokenIds: [first.id, second.id] });
    });

    it("answers 404 for another organization's client on every client route", async () => {
      const org = await request(owner, 'POST', '/api/v1/organizations', { name: 'Globex', slug: 'globex' });
      expect(org.statusCode).toBe(201);
      const globex = (await passwordToken(t, { organization: 'globex', scopes: ['clients:manage'] })).token;
      const theirs = await createClient('globex-client', globex);

      for (const [method, url] of [
        ['GET', `/api/v1/clients/${theirs}`],
        ['PATCH', `/api/v1/clients/${theirs}`],
        ['DELETE', `/api/v1/clients/${theirs}`],
        ['GET', `/api/v1/clients/${theirs}/tokens`],
        ['POST', `/api/v1/clients/${theirs}/tokens`],
      ] as const) {
        const response = await request(owner, method, url, method === 'PATCH' ? { name: 'stolen' } : method === 'POST' ? { name: 'stolen' } : undefined);
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        expect(json(response).code).toBe('not_found');
      }
      const still = await request(globex, 'GET', `/api/v1/clients/${theirs}`);
      expect(json(still)).toMatchObject({ name: 'globex-client' });
      expect(json(await request(globex, 'GET', `/api/v1/clients/${theirs}/tokens`)).items).toEqual([]);
    });

    it('answers 403 insufficient_scope to a member and to a token without clients:manage', async () => {
      const eu = await createClient('acme-eu');
      await addMember(t, owner, 'mia@example.com', 'member');
      const member = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write', 'scans:write'] }, 'mia@example.com')).token;
      const narrowOwner = (await passwordToken(t, { scopes: ['tokens:manage', 'members:manage'] })).token;
      for (const token of [member, narrowOwner]) {
        for (const [method, url] of [
          ['GET', '/api/v1/clients'],
          ['POST', '/api/v1/clients'],
          ['GET', `/api/v1/clients/${eu}`],
          ['PATCH', `/api/v1/clients/${eu}`],
          ['DELETE', `/api/v1/clients/${eu}`],
          ['GET', `/api/v1/clients/${eu}/tokens`],
          ['POST', `/api/v1/clients/${eu}/tokens`],
        ] as const) {
          const response = await request(token, method, url, method === 'POST' || method === 'PATCH' ? { name: 'x' } : undefined);
          expect(response.statusCode, `${method} ${url}`).toBe(403);
          expect(json(response).code).toBe('insufficient_scope');
          expect(response.headers['www-authenticate']).toContain('scope="clients:manage"');
        }
      }
      expect(json(await request(owner, 'GET', `/api/v1/clients/${eu}`)).name).toBe('acme-eu');
    });
  });

  describe('POST and GET /api/v1/clients/:id/tokens', () => {
    it('issues a kw_svc_ service token owned by the client, shown once', async () => {
      const eu = await createClient('acme-eu');
      const response = await request(owner, 'POST', `/api/v1/clients/${eu}/tokens`, { name: 'ingest', scopes: ['scans:read', 'tokens:read'], expiresInDays: 90 });
      expect(response.statusCode).toBe(201);
      expect(response.headers['cache-control']).toBe('no-store');
      const created = json(response);
      expect(created.token).toMatch(/^kw_svc_[0-9A-Za-z]{49}$/);
      expect(created).toMatchObject({
        name: 'ingest',
        kind: 'client',
        owner: { type: 'client', id: eu },
        organizationId: t.organizationId,
        scopes: ['scans:read', 'tokens:read'],
        // The least level its scopes need, not the creator's.
        permission: 'viewer',
        status: 'active',
        expiresAt: new Date(t.clock.now().getTime() + 90 * 86_400_000).toISOString(),
      });
      expect(created.hint).toBe(`kw_svc_…${created.token.slice(-4)}`);

      const listed = await request(owner, 'GET', `/api/v1/clients/${eu}/tokens`);
      expect(listed.statusCode).toBe(200);
      expect(json(listed).items.map((item: { id: string }) => item.id)).toEqual([created.id]);
      expect(json(listed).items[0]).not.toHaveProperty('token');
      expect(listed.body).not.toContain(created.token);

      const audit = await auditActions(t, { targetId: created.id });
      expect(audit.map((event) => event.action)).toEqual(['token.created']);
      expect(audit[0]?.details).toMatchObject({ kind: 'client' });
    });

    it("lists only that client's tokens, not personal ones or another client's", async () => {
      const eu = await createClient('acme-eu');
      const us = await createClient('acme-us');
      const euToken = await serviceToken(eu);
      await serviceToken(us);
      const listed = await request(owner, 'GET', `/api/v1/clients/${eu}/tokens`);
      expect(json(listed)).toEqual({ items: [expect.objectContaining({ id: euToken.id })], nextCursor: null });
    });

    it('applies the same rules as personal tokens: strict body, catalog scopes, unique names, no rights above the caller', async () => {
      const eu = await createClient('acme-eu');
      const email = await request(owner, 'POST', `/api/v1/clients/${eu}/tokens`, { name: 'svc', email: 'owner@example.com', password: 'x' });
      expect(email.statusCode).toBe(400);
      expect(json(email).code).toBe('validation_failed');

      const unknownScope = await request(owner, 'POST', `/api/v1/clients/${eu}/tokens`, { name: 'svc', scopes: ['scans:delete'] });
      expect(unknownScope.statusCode).toBe(400);
      expect(json(unknownScope).errors).toEqual([expect.objectContaining({ field: 'scopes/0' })]);

      await serviceToken(eu, { name: 'svc' });
      const duplicate = await request(owner, 'POST', `/api/v1/clients/${eu}/tokens`, { name: 'svc' });
      expect(duplicate.statusCode).toBe(409);
      expect(json(duplicate).code).toBe('conflict');

      // The caller's token lacks scans:write, so it cannot hand it out.
      const above = await request(owner, 'POST', `/api/v1/clients/${eu}/tokens`, { name: 'writer', scopes: ['scans:write'] });
      expect(above.statusCode).toBe(403);
      expect(json(above).code).toBe('forbidden');
    });

    it('lets a service token use the management routes its scopes allow, and no others', async () => {
      const eu = await createClient('acme-eu');
      const svc = await serviceToken(eu, { scopes: ['clients:manage', 'tokens:read'] });

      const clients = await request(svc.token, 'GET', '/api/v1/clients');
      expect(clients.statusCode).toBe(200);
      const created = await request(svc.token, 'POST', '/api/v1/clients', { name: 'made-by-service' });
      expect(created.statusCode).toBe(201);
      const audit = await auditActions(t, { targetId: json(created).id });
      expect(audit[0]).toMatchObject({ action: 'client.created', actor: { type: 'token', id: svc.id }, authMethod: 'client_token' });

      // Its own tokens are its client's.
      const own = await request(svc.token, 'GET', '/api/v1/tokens');
      expect(own.statusCode).toBe(200);
      expect(json(own).items.map((item: { id: string }) => item.id)).toEqual([svc.id]);

      const current = await request(svc.token, 'GET', '/api/v1/tokens/current');
      expect(json(current)).toMatchObject({ id: svc.id, kind: 'client', owner: { type: 'client', id: eu } });

      const members = await request(svc.token, 'GET', '/api/v1/members');
      expect(members.statusCode).toBe(403);
      expect(json(members).code).toBe('insufficient_scope');
      const all = await request(svc.token, 'GET', '/api/v1/tokens?all=true');
      expect(all.statusCode).toBe(403);
      expect(json(all).code).toBe('insufficient_scope');
    });

    it('does not let a service token create personal tokens', async () => {
      const eu = await createClient('acme-eu');
      const svc = await serviceToken(eu, { scopes: ['tokens:read', 'tokens:write'] });
      const response = await request(svc.token, 'POST', '/api/v1/tokens', { name: 'personal', scopes: ['tokens:read'] });
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('forbidden');
      expect(await auditActions(t, { action: 'token.created' })).toHaveLength(2);
    });
  });
});
