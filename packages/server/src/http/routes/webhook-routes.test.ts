import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachDialect } from '../../storage/test-databases.ts';
import { addMember, auditActions, bearer, createTestApp, expectProblem, json, ownerToken, passwordToken, type TestApp } from '../../testing/test-app.ts';

const HOOK_URL = 'https://hooks.example.com/keyward';

describeEachDialect('webhook routes', (open) => {
  let t: TestApp;
  let owner: string;
  beforeEach(async () => {
    t = await createTestApp(open);
    owner = await ownerToken(t);
  });
  afterEach(async () => {
    await t.close();
  });

  const create = (payload: Record<string, unknown>, token = owner) => t.app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: bearer(token), payload });
  const get = (url: string, token = owner) => t.app.inject({ method: 'GET', url, headers: bearer(token) });
  const patch = (id: string, payload: Record<string, unknown>, token = owner) => t.app.inject({ method: 'PATCH', url: `/api/v1/webhooks/${id}`, headers: bearer(token), payload });

  async function created(payload: Record<string, unknown> = {}) {
    const response = await create({ url: HOOK_URL, events: ['token.created', 'token.revoked'], ...payload });
    expect(response.statusCode, response.body).toBe(201);
    return json(response);
  }

  it('creates an endpoint and answers its signing secret once, never again in reads, lists, the audit log or the logs', async () => {
    const response = await create({ url: HOOK_URL, events: ['token.created', 'member.added'], description: 'SIEM' });
    expect(response.statusCode).toBe(201);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = json(response);
    expect(body).toMatchObject({ url: HOOK_URL, events: ['token.created', 'member.added'], description: 'SIEM', enabled: true, id: expect.stringMatching(/^whk_/) });
    expect(body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);

    const one = await get(`/api/v1/webhooks/${body.id}`);
    expect(one.statusCode).toBe(200);
    const list = await get('/api/v1/webhooks');
    expect(json(list).items.map((item: { id: string }) => item.id)).toEqual([body.id]);
    const [audit] = await auditActions(t, { action: 'webhook.created' });
    expect(audit).toMatchObject({ target: { type: 'webhook', id: body.id }, details: { url: HOOK_URL } });
    const stored = await t.database.db.selectFrom('webhookEndpoints').select('secretCiphertext').executeTakeFirstOrThrow();
    for (const text of [one.body, list.body, JSON.stringify(audit), t.logs.join(''), stored.secretCiphertext]) expect(text).not.toContain(body.secret);
    expect(Object.keys(json(one))).not.toContain('secret');
  });

  it.each([
    ['a loopback address', 'http://127.0.0.1:8080/hooks'],
    ['IPv6 loopback', 'http://[::1]/hooks'],
    ['an IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/hooks'],
    ['loopback spelled in hex', 'http://0x7f000001/hooks'],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/'],
    ['a private address', 'https://10.0.0.8/hooks'],
    ['a unique-local address', 'https://[fd00::8]/hooks'],
    ['an ftp URL', 'ftp://hooks.example.com/keyward'],
    ['a URL with credentials', 'https://user:secret@hooks.example.com/keyward'],
  ])('refuses %s at once with 400', async (_what, url) => {
    const body = expectProblem(await create({ url, events: ['token.created'] }), 400, 'validation_failed');
    expect(body.errors).toEqual([{ field: 'url', message: expect.any(String) }]);
    expect(json(await get('/api/v1/webhooks')).items).toEqual([]);
  });

  it('refuses unknown event types, an empty or repeating event list and unknown fields', async () => {
    expectProblem(await create({ url: HOOK_URL, events: ['token.exploded'] }), 400, 'validation_failed');
    expectProblem(await create({ url: HOOK_URL, events: [] }), 400, 'validation_failed');
    expectProblem(await create({ url: HOOK_URL, events: ['token.created', 'token.created'] }), 400, 'validation_failed');
    expectProblem(await create({ url: HOOK_URL, events: ['ping'] }), 400, 'validation_failed');
    expectProblem(await create({ url: HOOK_URL, events: ['token.created'], secret: 'mine' }), 400, 'validation_failed');
  });

  it('changes url, events, description and enabled, audits it, and refuses a private url on PATCH too', async () => {
    const { id } = await created();
    const response = await patch(id, { url: 'https://other.example.com/in', events: ['member.removed'], description: null, enabled: false });
    expect(response.statusCode, response.body).toBe(200);
    expect(json(response)).toMatchObject({ url: 'https://other.example.com/in', events: ['member.removed'], description: null, enabled: false });
    const [audit] = await auditActions(t, { action: 'webhook.updated' });
    expect(audit?.details).toMatchObject({ url: { from: HOOK_URL, to: 'https://other.example.com/in' }, enabled: false });
    expectProblem(await patch(id, { url: 'http://192.168.0.1/' }), 400, 'validation_failed');
    expectProblem(await patch(id, {}), 400, 'validation_failed');
  });

  it('deletes an endpoint with its delivery log', async () => {
    const { id } = await created();
    const response = await t.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${id}`, headers: bearer(owner) });
    expect(response.statusCode).toBe(204);
    expectProblem(await get(`/api/v1/webhooks/${id}`), 404, 'not_found');
    expect(await auditActions(t, { action: 'webhook.deleted' })).toHaveLength(1);
  });

  it('queues a ping on the test route, answers 409 for a disabled endpoint, and pages the delivery log', async () => {
    const { id } = await created();
    for (let index = 0; index < 3; index++) {
      const response = await t.app.inject({ method: 'POST', url: `/api/v1/webhooks/${id}/test`, headers: bearer(owner) });
      expect(response.statusCode).toBe(202);
      t.clock.advance(1000);
    }
    const first = await get(`/api/v1/webhooks/${id}/deliveries?limit=2`);
    expect(json(first).items).toHaveLength(2);
    expect(json(first).items[0]).toMatchObject({ eventType: 'ping', status: 'pending', attempts: 0, lastStatusCode: null });
    const second = await get(`/api/v1/webhooks/${id}/deliveries?limit=2&cursor=${json(first).nextCursor}`);
    expect(json(second)).toMatchObject({ items: [expect.any(Object)], nextCursor: null });
    expect(await auditActions(t, { action: 'webhook.test_sent' })).toHaveLength(3);

    await patch(id, { enabled: false });
    expectProblem(await t.app.inject({ method: 'POST', url: `/api/v1/webhooks/${id}/test`, headers: bearer(owner) }), 409, 'conflict');
  });

  it('refuses a member without members:manage with 403', async () => {
    await addMember(t, owner, 'member@example.com', 'member');
    const member = await passwordToken(t, { scopes: ['tokens:read'] }, 'member@example.com');
    expectProblem(await create({ url: HOOK_URL, events: ['token.created'] }, member.token), 403, 'insufficient_scope');
    expectProblem(await get('/api/v1/webhooks', member.token), 403, 'insufficient_scope');
    // An admin token without the scope is refused as well.
    const admin = await passwordToken(t, { scopes: ['tokens:manage'] });
    expectProblem(await get('/api/v1/webhooks', admin.token), 403, 'insufficient_scope');
  });

  it("answers 404 for another organization's endpoint, and lists only the caller's", async () => {
    const mine = await created();
    const organization = await t.app.inject({ method: 'POST', url: '/api/v1/organizations', headers: bearer(owner), payload: { name: 'Other', slug: 'other' } });
    expect(organization.statusCode).toBe(201);
    const other = (await passwordToken(t, { scopes: ['members:manage'], organization: 'other' })).token;
    const theirs = json(await create({ url: HOOK_URL, events: ['token.created'] }, other));
    for (const url of [`/api/v1/webhooks/${theirs.id}`, `/api/v1/webhooks/${theirs.id}/deliveries`]) expectProblem(await get(url), 404, 'not_found');
    expectProblem(await patch(theirs.id, { enabled: false }), 404, 'not_found');
    expectProblem(await t.app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${theirs.id}`, headers: bearer(owner) }), 404, 'not_found');
    expectProblem(await t.app.inject({ method: 'POST', url: `/api/v1/webhooks/${theirs.id}/test`, headers: bearer(owner) }), 404, 'not_found');
    expect(json(await get('/api/v1/webhooks')).items.map((item: { id: string }) => item.id)).toEqual([mine.id]);
    expect(json(await get(`/api/v1/webhooks/${theirs.id}`, other)).enabled).toBe(true);
  });

  it('writes no outbox event when no endpoint subscribed to the change', async () => {
    await created({ events: ['member.added'] });
    await passwordToken(t, { scopes: ['tokens:read'] });
    const row = await t.database.db.selectFrom('webhookEvents').select((eb) => eb.fn.countAll().as('count')).executeTakeFirstOrThrow();
    expect(Number(row.count)).toBe(0);
  });
});
