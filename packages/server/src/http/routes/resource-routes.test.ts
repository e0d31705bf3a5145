import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

describeEachDialect('resource routes', (open) => {
  let t: TestApp;
  let owner: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
  });
  afterEach(async () => {
    await t.close();
  });

  function post(token: string, payload: Record<string, unknown>) {
    return t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(token), payload });
  }
  function remove(token: string, id: string) {
    return t.app.inject({ method: 'DELETE', url: `/api/v1/resources/${id}`, headers: bearer(token) });
  }
  async function createResource(name: string, type = 'network'): Promise<string> {
    const response = await post(owner, { type, name });
    expect(response.statusCode).toBe(201);
    return json(response).id as string;
  }
  async function listed(token: string, query = ''): Promise<Record<string, any>> {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/resources${query}`, headers: bearer(token) });
    expect(response.statusCode).toBe(200);
    return json(response);
  }
  async function idsSeenBy(token: string): Promise<string[]> {
    return (await listed(token)).items.map((item: { id: string }) => item.id).sort();
  }
  async function tokenOf(id: string): Promise<Record<string, any>> {
    const response = await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: bearer(owner) });
    expect(response.statusCode).toBe(200);
    return json(response);
  }

  describe('POST /api/v1/resources', () => {
    it('adds a typed resource and records it', async () => {
      const response = await post(owner, { type: 'clearance-group', name: 'Plant 7 / Line B' });
      expect(response.statusCode).toBe(201);
      const resource = json(response);
      expect(resource).toEqual({ id: expect.stringMatching(/^res_[0-9A-Za-z]+$/), type: 'clearance-group', name: 'Plant 7 / Line B', createdAt: t.clock.now().toISOString() });

      const audit = await auditActions(t, { targetId: resource.id });
      expect(audit.map((event) => event.action)).toEqual(['resource.created']);
      expect(audit[0]?.details).toMatchObject({ type: 'clearance-group', name: 'Plant 7 / Line B' });
    });

    it('answers 409 for a second resource with the same type and name, but allows the name under another type', async () => {
      await createResource('lab');
      const duplicate = await post(owner, { type: 'network', name: 'lab' });
      expect(duplicate.statusCode).toBe(409);
      expect(json(duplicate).code).toBe('conflict');

      const otherType = await post(owner, { type: 'project', name: 'lab' });
      expect(otherType.statusCode).toBe(201);
      expect((await auditActions(t, { action: 'resource.created' })).length).toBe(2);
    });

    it('rejects unknown fields, a malformed type and a missing name field by field', async () => {
      const unknown = await post(owner, { type: 'network', name: 'lab', owner: 'me' });
      expect(unknown.statusCode).toBe(400);
      expect(json(unknown)).toMatchObject({ code: 'validation_failed', errors: [{ field: 'owner', message: 'is not a known field' }] });

      const type = await post(owner, { type: 'Network Zone', name: 'lab' });
      expect(type.statusCode).toBe(400);
      expect(json(type).errors).toEqual([expect.objectContaining({ field: 'type' })]);

      const missing = await post(owner, { type: 'network' });
      expect(missing.statusCode).toBe(400);
      expect(json(missing).errors).toEqual([{ field: 'name', message: 'is required' }]);

      const control = await post(owner, { type: 'network', name: 'line\nbreak' });
      expect(control.statusCode).toBe(400);
      expect((await listed(owner)).items).toEqual([]);
    });

    it('answers 403 insufficient_scope without members:manage', async () => {
      await addMember(t, owner, 'mia@example.com', 'member');
      const member = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'] }, 'mia@example.com')).token;
      const response = await post(member, { type: 'network', name: 'lab' });
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('scope="members:manage"');
      expect(await auditActions(t, { action: 'resource.created' })).toEqual([]);
    });
  });

  describe('GET /api/v1/resources', () => {
    it('lists the resources newest first with cursor pagination', async () => {
      const ids: string[] = [];
      for (const name of ['a', 'b', 'c']) {
        ids.push(await createResource(name));
        t.clock.advance(1000);
      }
      const first = await listed(owner, '?limit=2');
      expect(first.items.map((item: { name: string }) => item.name)).toEqual(['c', 'b']);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = await listed(owner, `?limit=2&cursor=${first.nextCursor}`);
      expect(second).toEqual({ items: [expect.objectContaining({ id: ids[0], name: 'a', type: 'network' })], nextCursor: null });

      const badCursor = await t.app.inject({ method: 'GET', url: '/api/v1/resources?cursor=bm9wZQ', headers: bearer(owner) });
      expect(badCursor.statusCode).toBe(400);
      expect(json(badCursor).code).toBe('validation_failed');
    });

    it('shows a member limited to some resources only those', async () => {
      const [lab, office] = [await createResource('lab'), await createResource('office')];
      await createResource('plant');
      await addMember(t, owner, 'mia@example.com', 'member', { resources: [office, lab] });
      const member = (await passwordToken(t, { scopes: ['tokens:read'] }, 'mia@example.com')).token;
      expect(await idsSeenBy(member)).toEqual([lab, office].sort());
      expect(await idsSeenBy(owner)).toHaveLength(3);
    });

    it('answers 403 insufficient_scope to a token with none of the token or member scopes', async () => {
      const scansOnly = (await passwordToken(t, { scopes: ['scans:read'] })).token;
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/resources', headers: bearer(scansOnly) });
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(response.headers['www-authenticate']).toContain('error="insufficient_scope"');
    });
  });

  describe('DELETE /api/v1/resources/:id', () => {
    it('removes the resource from every token that was granted it, keeping the ranking of the rest', async () => {
      const [lab, office, plant] = [await createResource('lab'), await createResource('office'), await createResource('plant')];
      const created = await passwordToken(t, { scopes: ['tokens:read'], resources: [plant, lab, office] });
      expect(created.body.resources.map((r: { id: string }) => r.id)).toEqual([plant, lab, office]);

      t.clock.advance(1000);
      const response = await remove(owner, lab);
      expect(response.statusCode).toBe(204);
      expect((await tokenOf(created.id)).resources).toEqual([
        { id: plant, type: 'network', name: 'plant' },
        { id: office, type: 'network', name: 'office' },
      ]);
      expect(await idsSeenBy(created.token)).toEqual([office, plant].sort());
      expect(await idsSeenBy(owner)).toEqual([office, plant].sort());

      const audit = await auditActions(t, { targetId: lab });
      expect(audit.map((event) => event.action)).toEqual(['resource.deleted', 'resource.created']);
      expect(audit[0]?.details).toMatchObject({ type: 'network', name: 'lab' });
    });

    it('leaves a token whose only granted resource was deleted with no resource, not with all of them', async () => {
      const [lab, office] = [await createResource('lab'), await createResource('office')];
      const created = await passwordToken(t, { scopes: ['tokens:read', 'tokens:write'], resources: [lab] });
      expect(await idsSeenBy(created.token)).toEqual([lab]);

      expect((await remove(owner, lab)).statusCode).toBe(204);
      // The API says so too, so a console can show "none" rather than "all".
      expect(await tokenOf(created.id)).toMatchObject({ resources: [], resourcesLimited: true });
      const stored = await t.context.deps.store.findToken(t.organizationId, created.id);
      expect(stored).toMatchObject({ resources: [], resourcesLimited: true });

      // It still authenticates, but reaches nothing: not office, which it was never granted.
      expect(await idsSeenBy(created.token)).toEqual([]);
      const grant = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(created.token), payload: { name: 'widened', scopes: ['tokens:read'], resources: [office] } });
      expect(grant.statusCode).toBe(403);
      expect(json(grant).code).toBe('forbidden');

      // Rotating it does not widen it either.
      const rotated = await t.app.inject({ method: 'POST', url: `/api/v1/tokens/${created.id}/rotate`, headers: bearer(owner), payload: {} });
      expect(rotated.statusCode).toBe(201);
      expect(await t.context.deps.store.findToken(t.organizationId, json(rotated).id)).toMatchObject({ resources: [], resourcesLimited: true });
      expect(await idsSeenBy(json(rotated).token)).toEqual([]);
    });

    it('leaves a member limited to only the deleted resource with no resource, not with all of them', async () => {
      const [lab, office] = [await createResource('lab'), await createResource('office')];
      const mia = await addMember(t, owner, 'mia@example.com', 'member', { resources: [lab] });
      const member = (await passwordToken(t, { scopes: ['tokens:read'] }, 'mia@example.com')).token;

      expect((await remove(owner, lab)).statusCode).toBe(204);
      expect(await idsSeenBy(member)).toEqual([]);
      const seen = await t.app.inject({ method: 'GET', url: `/api/v1/members/${mia}`, headers: bearer(owner) });
      expect(json(seen).resources).toEqual([]);
      expect(await idsSeenBy(owner)).toEqual([office]);
    });

    it("answers 404 for an unknown id, another organization's resource, or one outside a limited admin's reach", async () => {
      const lab = await createResource('lab');
      const office = await createResource('office');
      const unknown = await remove(owner, 'res_doesnotexist');
      expect(unknown.statusCode).toBe(404);
      expect(json(unknown).code).toBe('not_found');

      const org = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: 'Globex', slug: 'globex' } });
      expect(org.statusCode).toBe(201);
      const globex = (await passwordToken(t, { organization: 'globex', scopes: ['members:manage'] })).token;
      const theirs = json(await post(globex, { type: 'network', name: 'lab' })).id as string;
      const crossOrg = await remove(owner, theirs);
      expect(crossOrg.statusCode).toBe(404);
      expect(await idsSeenBy(globex)).toEqual([theirs]);
      expect(await idsSeenBy(owner)).toEqual([lab, office].sort());

      await addMember(t, owner, 'ada@example.com', 'admin', { resources: [lab] });
      const admin = (await passwordToken(t, { scopes: ['members:manage'] }, 'ada@example.com')).token;
      const outside = await remove(admin, office);
      expect(outside.statusCode).toBe(404);
      expect(await idsSeenBy(owner)).toEqual([lab, office].sort());
      expect(await auditActions(t, { action: 'resource.deleted' })).toEqual([]);
    });

    it('answers 403 insufficient_scope without members:manage', async () => {
      const lab = await createResource('lab');
      const narrow = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:manage'] })).token;
      const response = await remove(narrow, lab);
      expect(response.statusCode).toBe(403);
      expect(json(response).code).toBe('insufficient_scope');
      expect(await idsSeenBy(owner)).toEqual([lab]);
    });
  });
});
