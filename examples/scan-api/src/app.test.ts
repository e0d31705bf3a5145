// The scan API against a real Keyward server: every refusal the SDK answers,
// and the clearance rule on top of Keyward's ranked resource grants.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '@keyward/sdk';
import { startKeywardServer, type KeywardTestServer } from '../../../packages/sdk/src/testing/keyward-server.ts';
import { buildScanApi } from './app.ts';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

function expectProblem(answer: Answer, status: number, code: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: `urn:keyward:problem:${code}`, status, code, detail: expect.stringMatching(/.+/) });
}

/** Polls until `check` holds, failing after `withinMs`. */
async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > withinMs) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('the scan API example against a real Keyward server', () => {
  let keyward: KeywardTestServer;
  let verifier: Verifier;
  let api: FastifyInstance;
  let baseUrl: string;
  let verifyCalls = 0;
  let nightShift: string;
  let dayShift: string;
  let audit: string;

  beforeAll(async () => {
    keyward = await startKeywardServer();
    const counting: typeof fetch = (input, init) => {
      if (String(input).endsWith('/api/v1/verify')) verifyCalls++;
      return fetch(input, init);
    };
    verifier = createVerifier({ baseUrl: keyward.baseUrl, token: keyward.verifyToken, fetch: counting });
    await verifier.whenStreamOpen();
    api = await buildScanApi({ verifier });
    baseUrl = await api.listen({ host: '127.0.0.1', port: 0 });
    nightShift = await clearanceGroup('night shift');
    dayShift = await clearanceGroup('day shift');
    audit = await clearanceGroup('audit');
  });
  afterAll(async () => {
    await api?.close();
    await verifier?.close();
    await keyward?.close();
  });

  async function clearanceGroup(name: string): Promise<string> {
    const response = await keyward.t.app.inject({ method: 'POST', url: '/api/v1/resources', headers: { authorization: `Bearer ${keyward.owner}` }, payload: { type: 'clearance-group', name } });
    if (response.statusCode !== 201) throw new Error(`creating a clearance group failed: ${response.body}`);
    return response.json().id as string;
  }

  async function call(method: 'GET' | 'POST', path: string, token?: string, body?: unknown): Promise<Answer> {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  }

  /** A scan created by a token that may decide for every group. */
  async function scanWith(clearances: Array<{ group: string; decision: 'cleared' | 'denied' }>): Promise<string> {
    const { token } = await keyward.createToken({ scopes: ['scans:write'] });
    const created = await call('POST', '/scans', token, { target: 'db.internal', clearances });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.id as string;
  }

  it('lets a token with scans:read list scans, and a token with scans:write create one', async () => {
    const writer = await keyward.createToken({ scopes: ['scans:read', 'scans:write'] });
    const created = await call('POST', '/scans', writer.token, { target: '10.0.0.7' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^scn_/), target: '10.0.0.7', createdBy: expect.stringMatching(/^user:/), groups: [] });
    const reader = await keyward.createToken({ scopes: ['scans:read'] });
    const listed = await call('GET', '/scans', reader.token);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toContainEqual(created.body);
    expect((await call('GET', `/scans/${created.body.id}`, reader.token)).body).toEqual(created.body);
  });

  it('answers /health without a token', async () => {
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('refuses a request without a token with 401 and a Bearer challenge', async () => {
    const answer = await call('GET', '/scans');
    expectProblem(answer, 401, 'unauthenticated');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
  });

  it('refuses a malformed token with 401 invalid_token, without asking Keyward', async () => {
    const before = verifyCalls;
    const answer = await call('GET', '/scans', 'kw_pat_not-even-close');
    expectProblem(answer, 401, 'unauthenticated');
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
    expect(verifyCalls).toBe(before);
  });

  it('refuses a token without the scope a route needs with 403 insufficient_scope naming it', async () => {
    const { token } = await keyward.createToken({ scopes: ['scans:read'] });
    const answer = await call('POST', '/scans', token, { target: 'db.internal' });
    expectProblem(answer, 403, 'insufficient_scope');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="keyward", error="insufficient_scope", scope="scans:write"');
    const clearance = await call('GET', `/scans/${await scanWith([{ group: dayShift, decision: 'cleared' }])}/clearance`, token);
    expectProblem(clearance, 403, 'insufficient_scope');
  });

  it("answers a scan's clearance with the decision of the token's highest-ranked group that has one", async () => {
    const scan = await scanWith([
      { group: dayShift, decision: 'cleared' },
      { group: nightShift, decision: 'denied' },
    ]);
    const nightFirst = await keyward.createToken({ scopes: ['clearances:read'], resources: [audit, nightShift, dayShift] });
    expect((await call('GET', `/scans/${scan}/clearance`, nightFirst.token)).body).toEqual({ scan, group: nightShift, decision: 'denied' });
    const dayFirst = await keyward.createToken({ scopes: ['clearances:read'], resources: [dayShift, nightShift] });
    expect((await call('GET', `/scans/${scan}/clearance`, dayFirst.token)).body).toEqual({ scan, group: dayShift, decision: 'cleared' });
  });

  it("takes the scan's own order for a token that reaches every group, as Keyward confirms", async () => {
    const scan = await scanWith([
      { group: nightShift, decision: 'denied' },
      { group: dayShift, decision: 'cleared' },
    ]);
    const everything = await keyward.createToken({ scopes: ['clearances:read'] });
    expect((await call('GET', `/scans/${scan}/clearance`, everything.token)).body).toEqual({ scan, group: nightShift, decision: 'denied' });
  });

  it('refuses a clearance with 403 when none of the groups of the token decides the scan', async () => {
    const scan = await scanWith([{ group: dayShift, decision: 'cleared' }]);
    const { token } = await keyward.createToken({ scopes: ['clearances:read'], resources: [audit, nightShift] });
    const answer = await call('GET', `/scans/${scan}/clearance`, token);
    expectProblem(answer, 403, 'forbidden');
    expect(answer.body.detail).toMatch(/clearance group/);
  });

  it('refuses to record a decision for a clearance group outside the token with 403', async () => {
    const { token } = await keyward.createToken({ scopes: ['scans:write'], resources: [dayShift] });
    const answer = await call('POST', '/scans', token, { target: 'db.internal', clearances: [{ group: nightShift, decision: 'cleared' }] });
    expectProblem(answer, 403, 'forbidden');
    expect(answer.body.detail).toContain(nightShift);
    // A token reaching every group is asked about each through Keyward, which knows which exist.
    const everything = await keyward.createToken({ scopes: ['scans:write'] });
    const unknown = await call('POST', '/scans', everything.token, { target: 'db.internal', clearances: [{ group: 'res_elsewhere', decision: 'cleared' }] });
    expectProblem(unknown, 403, 'forbidden');
  });

  it('answers 400 validation_failed for a body outside the schema', async () => {
    const { token } = await keyward.createToken({ scopes: ['scans:write'] });
    expectProblem(await call('POST', '/scans', token, { target: 'db.internal', extra: true }), 400, 'validation_failed');
    expectProblem(await call('POST', '/scans', token, { target: 'db.internal', clearances: [{ group: dayShift, decision: 'maybe' }] }), 400, 'validation_failed');
  });

  it('sees a revocation through the event stream within 1 s, although the answer was cached', async () => {
    const { token, id } = await keyward.createToken({ scopes: ['scans:read'] });
    expect((await call('GET', '/scans', token)).status).toBe(200);
    const calls = verifyCalls;
    expect((await call('GET', '/scans', token)).status).toBe(200);
    expect(verifyCalls).toBe(calls); // answered from the verifier's cache
    await keyward.revoke(id);
    await eventually(async () => (await call('GET', '/scans', token)).status === 401, 1000);
    const answer = await call('GET', '/scans', token);
    expectProblem(answer, 401, 'unauthenticated');
    expect(answer.body.detail).toMatch(/revoked/);
  });

  it('refuses a rate-limited token with 429, Retry-After and RateLimit headers', async () => {
    const { token } = await keyward.createToken({ scopes: ['scans:read'], rateLimit: { limit: 1, windowSeconds: 60 } });
    const first = await call('GET', '/scans', token);
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-remaining')).toBe('0');
    const answer = await call('GET', '/scans', token);
    expectProblem(answer, 429, 'rate_limited');
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answer.headers.get('ratelimit-limit')).toBe('1');
  });

  it('refuses a token whose usage quota is spent with 403', async () => {
    const { token } = await keyward.createToken({ scopes: ['scans:read'], remaining: 2 });
    expect((await call('GET', '/scans', token)).status).toBe(200);
    expect((await call('GET', '/scans', token)).status).toBe(200);
    const answer = await call('GET', '/scans', token);
    expectProblem(answer, 403, 'forbidden');
    expect(answer.body.detail).toMatch(/quota/);
  });
});
