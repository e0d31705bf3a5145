// Ways a caller might reach past its own rights through a token's settings
// rather than its scopes: empty resource lists, loosened limits, deep inputs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('token settings that could widen rights', (open) => {
  let t: TestApp;
  let owner: string;
  let lab: string;
  let office: string;

  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
    const create = async (name: string): Promise<string> => json(await t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'site', name } })).id;
    lab = await create('lab');
    office = await create('office');
  });
  afterEach(async () => {
    await t.close();
  });

  const effectiveResources = async (token: string) => json(await t.app.inject({ method: 'GET', url: '/api/v1/tokens/current', headers: bearer(token) })).effective.resources;

  describe('an empty resource list', () => {
    it('does not let a token limited to one resource widen itself to all with PATCH resources []', async () => {
      const limited = await passwordToken(t, { name: 'lab only', scopes: ['tokens:read', 'tokens:write'], resources: [lab] });
      const patched = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${limited.id}`, headers: bearer(limited.token), payload: { resources: [] } });
      expect(patched.statusCode).toBe(200);
      expect(json(patched).resources.map((resource: { id: string }) => resource.id)).toEqual([lab]);
      expect(await effectiveResources(limited.token)).toEqual([lab]);
    });

    it("gives a child token created by a limited token the creator's resources, not all", async () => {
      const limited = await passwordToken(t, { name: 'lab only', scopes: ['tokens:read', 'tokens:write', 'scans:read'], resources: [lab] });
      const child = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(limited.token), payload: { name: 'child', scopes: ['scans:read'] } });
      expect(child.statusCode).toBe(201);
      expect(json(child).resources.map((resource: { id: string }) => resource.id)).toEqual([lab]);
      expect(await effectiveResources(json(child).token)).toEqual([lab]);
    });

    it('gives a service token created by an admin limited to some resources those resources, not all', async () => {
      await addMember(t, owner, 'limited-admin@example.com', 'admin', { resources: [office] });
      const admin = await passwordToken(t, { name: 'admin', scopes: ['clients:manage', 'scans:read'] }, 'limited-admin@example.com');
      const client = json(await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(admin.token), payload: { name: 'customer' } }));
      const issued = await t.app.inject({ method: 'POST', url: `/api/v1/clients/${client.id}/tokens`, headers: bearer(admin.token), payload: { name: 's1', scopes: ['scans:read'] } });
      expect(issued.statusCode).toBe(201);
      expect(json(issued).resources.map((resource: { id: string }) => resource.id)).toEqual([office]);
      expect(await effectiveResources(json(issued).token)).toEqual([office]);
    });

    it('still means every resource for a caller who reaches every resource', async () => {
      const everything = await passwordToken(t, { name: 'everything', scopes: ['tokens:read'], resources: [] });
      expect(everything.body.resources).toEqual([]);
      expect(await effectiveResources(everything.token)).toBeNull();
    });
  });

  describe('a refusal to grant more than the bearer holds', () => {
    it('answers 403 forbidden with an RFC 6750 insufficient_scope challenge', async () => {
      const narrow = await passwordToken(t, { name: 'narrow', scopes: ['tokens:write'] });
      const refused = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(narrow.token), payload: { name: 'wider', scopes: ['scans:write'] } });
      expect(refused.statusCode).toBe(403);
      expect(json(refused).code).toBe('forbidden');
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="keyward", error="insufficient_scope"');
    });
  });

  describe('PATCH that loosens a token', () => {
    it("refuses (403) to lift the IP allowlist or rate limit of a token holding more than the caller, but lets it disable the token", async () => {
      const strong = await passwordToken(t, { name: 'strong', scopes: ['members:manage', 'tokens:write'], allowedIps: ['127.0.0.1'], rateLimit: { limit: 5, windowSeconds: 60 } });
      const narrow = await passwordToken(t, { name: 'narrow', scopes: ['tokens:write', 'tokens:manage'] });
      for (const payload of [{ allowedIps: [] }, { rateLimit: null }]) {
        const refused = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${strong.id}`, headers: bearer(narrow.token), payload });
        expect(refused.statusCode).toBe(403);
        expect(json(refused).code).toBe('forbidden');
      }
      const disabled = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${strong.id}`, headers: bearer(narrow.token), payload: { enabled: false } });
      expect(disabled.statusCode).toBe(200);
      expect(json(disabled).status).toBe('disabled');
      const reenabled = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${strong.id}`, headers: bearer(narrow.token), payload: { enabled: true } });
      expect(reenabled.statusCode).toBe(403);
    });
  });

  describe("an admin editing someone else's token", () => {
    it("refuses (403) scopes or resources the token's owner could not use, and stores nothing", async () => {
      await addMember(t, owner, 'viewer@example.com', 'viewer', { resources: [lab] });
      const viewerToken = await passwordToken(t, { name: 'viewer', scopes: ['scans:read'] }, 'viewer@example.com');
      const admin = await passwordToken(t, { name: 'admin', scopes: ['tokens:manage', 'tokens:write', 'scans:read', 'clearances:write'] });
      const scopes = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${viewerToken.id}`, headers: bearer(admin.token), payload: { scopes: ['clearances:write'] } });
      expect(scopes.statusCode).toBe(403);
      const resources = await t.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${viewerToken.id}`, headers: bearer(admin.token), payload: { resources: [office] } });
      expect(resources.statusCode).toBe(403);
      const stored = await t.context.deps.store.findToken(t.organizationId, viewerToken.id);
      expect(stored?.scopes).toEqual(['scans:read']);
      expect(stored?.resources.map((resource) => resource.id)).toEqual([lab]);
    });
  });

  describe('metadata', () => {
    it('answers 400, not 500, for metadata nested too deeply to serialize', async () => {
      // Built as text: the test's own JSON.stringify would overflow first.
      const depth = 100_000;
      const payload = `{"name":"deep","scopes":[],"metadata":{"a":${'['.repeat(depth)}1${']'.repeat(depth)}}}`;
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', payload, headers: { ...bearer(owner), 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(400);
      expect(json(response)).toMatchObject({ code: 'validation_failed', errors: [{ field: 'metadata', message: 'is nested too deeply' }] });
    });
  });
});
