import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VerifyCode } from '@keyward/core';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { UsageStore } from '../../storage/usage-rows.ts';
import { addMember, bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const BOB = 'bob@example.com';

describeEachDialect('GET /api/v1/usage', (open) => {
  let t: TestApp;
  let owner: string;
  let personalId: string;
  let clientId: string;
  let serviceId: string;

  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
    personalId = (await passwordToken(t, { name: 'laptop', scopes: ['scans:read'] })).id;
    const client = await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'acme-eu' } });
    expect(client.statusCode, client.body).toBe(201);
    clientId = json(client).id;
    const service = await t.app.inject({ method: 'POST', url: `/api/v1/clients/${clientId}/tokens`, headers: bearer(owner), payload: { name: 'svc', scopes: ['tokens:read'] } });
    expect(service.statusCode, service.body).toBe(201);
    serviceId = json(service).id;
    // `to` is exclusive: a verification at exactly the moment asked about is not yet in the answer.
    t.clock.advance(1_000);
  });
  afterEach(async () => {
    await t.close();
  });

  function record(code: VerifyCode, times: number, token: { tokenId: string | null; clientId?: string | null; organizationId?: string }): void {
    for (let i = 0; i < times; i += 1) {
      t.context.usage.record({ organizationId: token.organizationId ?? t.organizationId, tokenId: token.tokenId, clientId: token.clientId ?? null, code });
    }
  }

  /** Verifications in two minutes of one hour and in the next hour, at 10:00, 10:01 and 11:30. */
  async function seed(): Promise<void> {
    record('VALID', 3, { tokenId: personalId });
    record('INSUFFICIENT_SCOPE', 1, { tokenId: personalId });
    record('VALID', 5, { tokenId: serviceId, clientId });
    t.clock.advance(MINUTE_MS);
    record('VALID', 2, { tokenId: personalId });
    record('NOT_FOUND', 7, { tokenId: null });
    t.clock.advance(89 * MINUTE_MS);
    record('RATE_LIMITED', 4, { tokenId: serviceId, clientId });
    await t.context.usage.flush();
    t.clock.advance(MINUTE_MS);
  }

  function usage(query: string, token = owner) {
    return t.app.inject({ method: 'GET', url: `/api/v1/usage${query}`, headers: bearer(token) });
  }

  async function usageOk(query: string, token = owner): Promise<Record<string, any>> {
    const response = await usage(query, token);
    expect(response.statusCode, response.body).toBe(200);
    return json(response);
  }

  it("answers the organization's last 24 hours in hour buckets by default", async () => {
    await seed();
    // The default range ends with the current minute, so what was just counted shows.
    const endOfMinute = Math.floor(t.clock.now().getTime() / 60_000) * 60_000 + 60_000;
    expect(await usageOk('')).toEqual({
      granularity: 'hour',
      from: new Date(Math.floor((endOfMinute - 24 * HOUR_MS) / HOUR_MS) * HOUR_MS).toISOString(),
      to: new Date(endOfMinute).toISOString(),
      buckets: [
        { start: '2026-01-05T10:00:00.000Z', total: 18, counts: { VALID: 10, INSUFFICIENT_SCOPE: 1, NOT_FOUND: 7 } },
        { start: '2026-01-05T11:00:00.000Z', total: 4, counts: { RATE_LIMITED: 4 } },
      ],
    });
  });

  it('answers minute and day buckets', async () => {
    await seed();
    const range = '&from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z';
    expect((await usageOk(`?granularity=minute${range}`)).buckets).toEqual([
      { start: '2026-01-05T10:00:00.000Z', total: 9, counts: { VALID: 8, INSUFFICIENT_SCOPE: 1 } },
      { start: '2026-01-05T10:01:00.000Z', total: 9, counts: { VALID: 2, NOT_FOUND: 7 } },
      { start: '2026-01-05T11:30:00.000Z', total: 4, counts: { RATE_LIMITED: 4 } },
    ]);
    expect(await usageOk(`?granularity=day${range}`)).toEqual({
      granularity: 'day',
      from: '2026-01-05T00:00:00.000Z',
      to: '2026-01-06T00:00:00.000Z',
      buckets: [{ start: '2026-01-05T00:00:00.000Z', total: 22, counts: { VALID: 10, INSUFFICIENT_SCOPE: 1, NOT_FOUND: 7, RATE_LIMITED: 4 } }],
    });
  });

  it('rounds `from` down to its bucket and leaves `to` out', async () => {
    await seed();
    const body = await usageOk('?granularity=hour&from=2026-01-05T10:00:30Z&to=2026-01-05T11:30:00Z');
    expect(body.from).toBe('2026-01-05T10:00:00.000Z');
    expect(body.buckets).toEqual([{ start: '2026-01-05T10:00:00.000Z', total: 18, counts: { VALID: 10, INSUFFICIENT_SCOPE: 1, NOT_FOUND: 7 } }]);
  });

  it('filters by token and by client', async () => {
    await seed();
    expect((await usageOk(`?granularity=day&tokenId=${personalId}`)).buckets).toEqual([{ start: '2026-01-05T00:00:00.000Z', total: 6, counts: { VALID: 5, INSUFFICIENT_SCOPE: 1 } }]);
    expect((await usageOk(`?granularity=day&clientId=${clientId}`)).buckets).toEqual([{ start: '2026-01-05T00:00:00.000Z', total: 9, counts: { VALID: 5, RATE_LIMITED: 4 } }]);
    expect((await usageOk(`?granularity=day&clientId=${clientId}&tokenId=${personalId}`)).buckets).toEqual([]);
  });

  it('shows counts once the recorder has flushed them', async () => {
    record('VALID', 1, { tokenId: personalId });
    expect((await usageOk('')).buckets).toEqual([]);
    await t.context.usage.flush();
    expect((await usageOk('')).buckets).toEqual([{ start: '2026-01-05T10:00:00.000Z', total: 1, counts: { VALID: 1 } }]);
  });

  it('writes what is still buffered when the app closes', async () => {
    record('VALID', 2, { tokenId: personalId });
    await t.app.close();
    const buckets = await new UsageStore(t.database.db).queryUsage({ organizationId: t.organizationId, from: new Date(0), to: new Date('2027-01-01T00:00:00Z'), granularity: 'day' });
    expect(buckets).toEqual([{ start: new Date('2026-01-05T00:00:00.000Z'), total: 2, counts: { VALID: 2 } }]);
  });

  describe('authorization', () => {
    it("shows a token's usage to whoever can view that token", async () => {
      await seed();
      await addMember(t, owner, BOB, 'member');
      const bob = await passwordToken(t, { name: 'bob reader', scopes: ['tokens:read'] }, BOB);
      record('VALID', 1, { tokenId: bob.id });
      await t.context.usage.flush();

      expect((await usageOk(`?tokenId=${bob.id}`, bob.token)).buckets).toEqual([expect.objectContaining({ total: 1, counts: { VALID: 1 } })]);
      // Someone else's token answers like a missing one.
      expectProblem(await usage(`?tokenId=${personalId}`, bob.token), 404, 'not_found');
      expectProblem(await usage('?tokenId=tok_doesnotexist', bob.token), 404, 'not_found');
      // The whole organization, or a client, needs audit:read.
      expectProblem(await usage('', bob.token), 403, 'insufficient_scope');
      expectProblem(await usage(`?clientId=${clientId}`, bob.token), 403, 'insufficient_scope');
    });

    it('shows a client and its tokens to clients:manage', async () => {
      await seed();
      const manager = (await passwordToken(t, { scopes: ['clients:manage'] })).token;
      expect((await usageOk(`?granularity=day&clientId=${clientId}`, manager)).buckets[0].total).toBe(9);
      expect((await usageOk(`?granularity=day&tokenId=${serviceId}`, manager)).buckets[0].total).toBe(9);
      expectProblem(await usage(`?tokenId=${personalId}`, manager), 404, 'not_found');
      expectProblem(await usage('', manager), 403, 'insufficient_scope');
    });

    it("answers 404 for another organization's token or client", async () => {
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: 'Globex', slug: 'globex' } });
      const globexId = json(created).id as string;
      const there = await passwordToken(t, { organization: 'globex', scopes: ['tokens:read', 'clients:manage', 'audit:read'] });
      record('VALID', 3, { tokenId: there.id, organizationId: globexId });
      await t.context.usage.flush();
      expect((await usageOk(`?tokenId=${there.id}`, there.token)).buckets[0].total).toBe(3);

      expectProblem(await usage(`?tokenId=${there.id}`), 404, 'not_found');
      expectProblem(await usage(`?clientId=${clientId}`, there.token), 404, 'not_found');
      // Globex's verifications are not Acme's usage.
      expect((await usageOk('')).buckets).toEqual([]);
    });

    it('answers 403 insufficient_scope to a caller with none of the scopes, and 401 to no caller', async () => {
      const scans = (await passwordToken(t, { scopes: ['scans:read'] })).token;
      const response = expectProblem(await usage('', scans), 403, 'insufficient_scope');
      expect(response.detail).toContain('audit:read');
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/usage' }), 401, 'unauthenticated');
    });
  });

  describe('validation', () => {
    it('answers 400 naming `from` for a range that is empty, reversed or too long for its granularity', async () => {
      for (const query of [
        '?from=2026-01-05T10:00:00Z&to=2026-01-05T09:00:00Z',
        '?from=2026-01-05T10:00:00Z&to=2026-01-05T10:00:00Z',
        '?granularity=minute&from=2026-01-04T09:59:00Z&to=2026-01-05T10:00:00Z',
        '?granularity=hour&from=2025-10-01T00:00:00Z&to=2026-01-05T00:00:00Z',
        '?granularity=day&from=2024-01-01T00:00:00Z&to=2026-01-05T00:00:00Z',
        // The date-time format admits a leap second; no Date can hold one.
        '?from=2026-01-05T09:59:60Z',
      ]) {
        const body = expectProblem(await usage(query), 400, 'validation_failed');
        expect(body.errors, query).toEqual([expect.objectContaining({ field: 'from' })]);
      }
    });

    it('answers 400 for an unknown granularity, a malformed date or id, and an unknown parameter', async () => {
      for (const query of ['?granularity=week', '?from=yesterday', '?tokenId=../x', '?org=org_x']) {
        expectProblem(await usage(query), 400, 'validation_failed');
      }
    });

    it('accepts exactly a day of minutes, 90 days of hours and 400 days', async () => {
      await usageOk('?granularity=minute&from=2026-01-04T10:00:00Z&to=2026-01-05T10:00:00Z');
      await usageOk('?granularity=hour&from=2025-10-07T00:00:00Z&to=2026-01-05T00:00:00Z');
      await usageOk('?granularity=day&from=2024-12-01T00:00:00Z&to=2026-01-05T00:00:00Z');
    });
  });

  it('is documented in the OpenAPI document with the scopes that admit it', async () => {
    const document = json(await t.app.inject({ method: 'GET', url: '/openapi.json' }));
    const operation = document.paths['/api/v1/usage'].get;
    expect(operation.tags).toEqual(['Usage']);
    expect(operation.description).toContain('audit:read');
    expect(operation.parameters.map((parameter: { name: string }) => parameter.name).sort()).toEqual(['clientId', 'from', 'granularity', 'to', 'tokenId']);
    expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['200', '400', '403', '404']));
  });
});
