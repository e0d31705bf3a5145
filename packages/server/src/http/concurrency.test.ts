// Checks that read, then write ("is this name free?", "does an owner remain?")
// must hold when requests race; on PostgreSQL they would not without locking.
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { addMember, bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';

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

  /**
   * Exactly one request wins with `winner`; every other one is refused with one
   * of the `refusals` (status and problem code). Anything else, a 500 included, fails.
   */
  function expectOneWinner(responses: LightMyRequestResponse[], winner: number, refusals: Array<[number, string]> = [[409, 'conflict']]): void {
    const winners = responses.filter((response) => response.statusCode === winner);
    expect(winners, responses.map((response) => `${response.statusCode} ${response.body}`).join('\n')).toHaveLength(1);
    for (const response of responses.filter((each) => each !== winners[0])) {
      const refusal = refusals.find(([status]) => status === response.statusCode);
      expect(refusal, `unexpected ${response.statusCode} ${response.body}`).toBeDefined();
      expectProblem(response, refusal![0], refusal![1]);
    }
  }

  describe('POST /api/v1/tokens', () => {
    it('creates one live token per name when four requests race for it', async () => {
      const responses = await Promise.all(
        [1, 2, 3, 4].map(() => t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(owner), payload: { name: 'deploy', scopes: ['tokens:read'] } })),
      );
      expectOneWinner(responses, 201);
      const listed = json(await t.app.inject({ method: 'GET', url: '/api/v1/tokens?status=active', headers: bearer(owner) }));
      expect(listed.items.filter((item: { name: string }) => item.name === 'deploy')).toHaveLength(1);
    });
  });

  describe('POST /api/v1/clients and /resources', () => {
    it('creates one client and one resource per name when requests race', async () => {
      const clients = await Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'acme' } })));
      expectOneWinner(clients, 201);
      const resources = await Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: bearer(owner), payload: { type: 'site', name: 'lab' } })));
      expectOneWinner(resources, 201);
      const listedClients = json(await t.app.inject({ method: 'GET', url: '/api/v1/clients', headers: bearer(owner) }));
      expect(listedClients.items.filter((item: { name: string }) => item.name === 'acme')).toHaveLength(1);
      const listedResources = json(await t.app.inject({ method: 'GET', url: '/api/v1/resources', headers: bearer(owner) }));
      expect(listedResources.items.filter((item: { name: string }) => item.name === 'lab')).toHaveLength(1);
    });
  });

  describe('POST /api/v1/members', () => {
    it('never answers 500 when the same email is invited concurrently, and keeps one invitation', async () => {
      const responses = await Promise.all(
        [1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/api/v1/members', headers: bearer(owner), payload: { email: 'new@example.com', role: 'viewer' } })),
      );
      expect(responses.map((response) => response.statusCode)).toEqual([201, 201, 201]);
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
      // The loser is refused as the last owner (409), or, when it authenticated after
      // its own demotion, as an admin who may not change an owner (403).
      expectOneWinner(responses, 200, [[409, 'conflict'], [403, 'forbidden']]);
      expect(await t.context.deps.store.countOwners(t.organizationId)).toBe(1);
    });
  });
});
