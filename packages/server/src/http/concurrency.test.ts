// Checks that read, then write ("is this name free?", "does an owner remain?")
// must hold when requests race; on PostgreSQL they would not without locking.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { addMember, bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';

describeEachDialect('concurrent lifecycle changes', (open) => {
  let t: TestApp;
  let owner: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
  });
  afterEach(async () => {
    await t.close();
  });

  const statuses = (responses: Array<{ statusCode: number }>) => responses.map((response) => response.statusCode).sort();

  describe('POST /api/v1/tokens', () => {
    it('creates one live token per name when four requests race for it', async () => {
      const responses = await Promise.all(
        [1, 2, 3, 4].map(() => t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(owner), payload: { name: 'deploy', scopes: ['tokens:read'] } })),
      );
      expect(statuses(responses)).toEqual([201, 409, 409, 409]);
      const listed = json(await t.app.inject({ method: 'GET', url: '/api/v1/tokens?status=active', headers: bearer(owner) }));
      expect(listed.items.filter((item: { name: string }) => item.name === 'deploy')).toHaveLength(1);
    });
  });

  describe('POST /api/v1/clients and /resources', () => {
    it('creates one client and one resource per name when requests race', async () => {
      const clients = await Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'acme' } })));
      expect(statuses(clients)).toEqual([201, 409, 409]);
      const resources = await Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'site', name: 'lab' } })));
      expect(statuses(resources)).toEqual([201, 409, 409]);
    });
  });

  describe('POST /api/v1/members', () => {
    it('never answers 500 when the same email is invited concurrently, and keeps one invitation', async () => {
      const responses = await Promise.all(
        [1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/members', headers: bearer(owner), payload: { email: 'new@example.com', role: 'viewer' } })),
      );
      expect(statuses(responses)).toEqual([201, 201, 201]);
      const listed = json(await t.app.inject({ method: 'GET', url: '/api/v1/members', headers: bearer(owner) }));
      expect(listed.items.filter((item: { email: string }) => item.email === 'new@example.com')).toHaveLength(1);
    });
  });

  describe('PATCH /api/v1/members/{userId}', () => {
    it('keeps an owner when two owners demote each other at the same time', async () => {
      const second = await addMember(t, owner, 'second-owner@example.com', 'owner');
      const secondToken = (await passwordToken(t, { scopes: ['members:manage'] }, 'second-owner@example.com')).token;
      const responses = await Promise.all([
        t.app.inject({ method: 'PATCH', url: `/api/v1/members/${second}`, headers: bearer(owner), payload: { role: 'admin' } }),
        t.app.inject({ method: 'PATCH', url: `/api/v1/members/${t.ownerId}`, headers: bearer(secondToken), payload: { role: 'admin' } }),
      ]);
      expect(responses.map((response) => response.statusCode)).toContain(200);
      expect(await t.context.deps.store.countOwners(t.organizationId)).toBe(1);
    });
  });
});
