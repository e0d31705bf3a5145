// One suite every framework adapter passes: the same refusals, statuses,
// problem codes and challenges as the Keyward server.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../verifier/create-verifier.ts';
import { eventually } from './eventually.ts';
import { startKeywardServer, type KeywardTestServer } from './keyward-server.ts';

const DAY_MS = 86_400_000;

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/**
 * A protected app with two routes: `GET /scans` behind keyward() and
 * requireScope('scans:read'), answering `{ tokenId }` from the verified token;
 * `GET /projects/:id` behind keyward() and requireResource(id).
 */
export interface ProtectedApp {
  request(path: string, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
  /** The client address the adapter sees by default, if the app has a socket. */
  clientIp?: string;
}

export type StartProtectedApp = (verifier: Verifier) => Promise<ProtectedApp>;

export async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

function expectProblem(answer: Answer, status: number, code: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: `urn:keyward:problem:${code}`, status, code, title: expect.any(String), detail: expect.stringMatching(/.+/) });
}

function expectInvalidToken(answer: Answer, detail: RegExp): void {
  expectProblem(answer, 401, 'unauthenticated');
  expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
  expect(answer.body.detail).toMatch(detail);
}

export function describeMiddleware(name: string, start: StartProtectedApp): void {
  describe(`${name} middleware against a real Keyward server`, () => {
    let server: KeywardTestServer;
    let app: ProtectedApp;
    let verifyCalls = 0;

    beforeAll(async () => {
      server = await startKeywardServer();
      const counting: typeof fetch = (input, init) => {
        if (String(input).endsWith('/api/v1/verify')) verifyCalls++;
        return fetch(input, init);
      };
      app = await start(createVerifier({ baseUrl: server.baseUrl, token: server.verifyToken, fetch: counting, events: false }));
    });
    afterAll(async () => {
      await app?.close();
      await server?.close();
    });

    const get = (path: string, token?: string) => app.request(path, token === undefined ? {} : { authorization: `Bearer ${token}` });

    it('accepts a valid token and puts the verified token on the request', async () => {
      const { token, id } = await server.createToken({ scopes: ['scans:read'] });
      const answer = await get('/scans', token);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ tokenId: id });
    });

    it('refuses a request without a token with 401 and a bare Bearer challenge', async () => {
      const answer = await get('/scans');
      expectProblem(answer, 401, 'unauthenticated');
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
    });

    it('refuses a malformed token with 401 invalid_token, without asking Keyward', async () => {
      const before = verifyCalls;
      expectInvalidToken(await get('/scans', 'kw_pat_garbage'), /malformed/);
      expectInvalidToken(await app.request('/scans', { authorization: 'Basic dXNlcjpwYXNz' }), /Bearer/);
      expect(verifyCalls).toBe(before);
    });

    it('refuses an expired token with 401 invalid_token', async () => {
      const { token } = await server.createToken({ expiresInDays: 1 });
      server.t.clock.advance(DAY_MS + 1000);
      expectInvalidToken(await get('/scans', token), /expired/);
    });

    it('refuses a revoked token with 401 invalid_token', async () => {
      const { token, id } = await server.createToken();
      await server.revoke(id);
      expectInvalidToken(await get('/scans', token), /revoked/);
    });

    it('refuses a token revoked after it was accepted, as soon as the event stream carries the revocation', async () => {
      const live = createVerifier({ baseUrl: server.baseUrl, token: server.verifyToken, cache: { ttlMs: 60_000 }, events: { initialDelayMs: 50 } });
      const liveApp = await start(live);
      try {
        await live.whenStreamOpen();
        const { token, id } = await server.createToken();
        const headers = { authorization: `Bearer ${token}` };
        expect((await liveApp.request('/scans', headers)).status).toBe(200);
        await server.revoke(id);
        // Well under the cache TTL: the stream, not the expiry of the cached answer, refuses it (1 s target; 3 s allowed here).
        await eventually(async () => (await liveApp.request('/scans', headers)).status === 401, 3_000);
        expectInvalidToken(await liveApp.request('/scans', headers), /revoked/);
      } finally {
        await liveApp.close();
        await live.close();
      }
    });

    it('refuses a disabled token with 401 invalid_token', async () => {
      const { token, id } = await server.createToken();
      await server.patch(id, { enabled: false });
      expectInvalidToken(await get('/scans', token), /disabled/);
    });

    it('refuses a token without the route scope with 403 insufficient_scope naming it', async () => {
      const { token } = await server.createToken({ scopes: ['scans:write'] });
      const answer = await get('/scans', token);
      expectProblem(answer, 403, 'insufficient_scope');
      expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="keyward", error="insufficient_scope", scope="scans:read"');
    });

    it('refuses a token outside its resources with 403, and lets it reach its own', async () => {
      const granted = await server.createResource('granted');
      const other = await server.createResource('other');
      const { token } = await server.createToken({ resources: [granted] });
      expect((await get(`/projects/${granted}`, token)).status).toBe(200);
      const answer = await get(`/projects/${other}`, token);
      expectProblem(answer, 403, 'forbidden');
      expect(answer.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
      // A token that reaches all its owner's resources is asked about them: the server knows which exist.
      const everything = await server.createToken();
      expect((await get(`/projects/${other}`, everything.token)).status).toBe(200);
      expectProblem(await get('/projects/res_elsewhere', everything.token), 403, 'forbidden');
    });

    it('refuses a project id that cannot name a resource with 403, after judging the token, without asking Keyward about it', async () => {
      const { token } = await server.createToken();
      const calls = verifyCalls;
      for (const id of ['not a resource', 'RES_1', `res_${'x'.repeat(65)}`]) {
        expectProblem(await get(`/projects/${encodeURIComponent(id)}`, token), 403, 'forbidden');
      }
      // The token itself was asked about once (then cached); the impossible ids never were.
      expect(verifyCalls - calls).toBe(1);
      expectInvalidToken(await get(`/projects/${encodeURIComponent('not a resource')}`, 'not-a-token'), /malformed/);
    });

    it('refuses a rate-limited token with 429, Retry-After and RateLimit headers', async () => {
      const { token } = await server.createToken({ rateLimit: { limit: 1, windowSeconds: 60 } });
      const first = await get('/scans', token);
      expect(first.status).toBe(200);
      expect(first.headers.get('ratelimit-limit')).toBe('1');
      expect(first.headers.get('ratelimit-remaining')).toBe('0');
      const answer = await get('/scans', token);
      expectProblem(answer, 429, 'rate_limited');
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answer.headers.get('ratelimit-limit')).toBe('1');
      expect(answer.headers.get('ratelimit-remaining')).toBe('0');
      expect(Number(answer.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    });

    it("refuses a token used outside its IP allowlist with 403, judging the request's client address", async () => {
      const elsewhere = await server.createToken({ allowedIps: ['10.0.0.0/8'] });
      const answer = await get('/scans', elsewhere.token);
      expectProblem(answer, 403, 'forbidden');
      expect(answer.body.detail).toMatch(/address/);
      if (app.clientIp) {
        const here = await server.createToken({ allowedIps: [`${app.clientIp}/32`] });
        expect((await get('/scans', here.token)).status).toBe(200);
      }
    });

    it('refuses a token whose quota is spent with 403', async () => {
      const { token } = await server.createToken({ remaining: 1 });
      expect((await get('/scans', token)).status).toBe(200);
      const answer = await get('/scans', token);
      expectProblem(answer, 403, 'forbidden');
      expect(answer.body.detail).toMatch(/quota/);
    });

    it('answers any Authorization header and any project id with a verdict, never a server error', async () => {
      const { token } = await server.createToken({ scopes: ['scans:read'] });
      const resource = await server.createResource('fuzzed');
      // Printable ASCII: what an HTTP client lets through in a header.
      const presented = fc.oneof(
        fc.string({ maxLength: 80 }),
        fc.string({ maxLength: 60 }).map((text) => `Bearer ${text}`),
        fc.constantFrom(`Bearer ${token}`, `bearer ${token}`, `Bearer  ${token}`, `Bearer ${token} `, `Bearer ${token}x`, `Basic ${token}`, `Bearer ${token.slice(0, -1)}`, 'Bearer', 'Bearer '),
      );
      const path = fc.oneof(fc.constant('/scans'), fc.constant(`/projects/${resource}`), fc.string({ minLength: 1, maxLength: 40 }).map((id) => `/projects/${encodeURIComponent(id)}`));
      await fc.assert(
        fc.asyncProperty(presented, path, async (authorization, target) => {
          const answer = await app.request(target, { authorization });
          const context = `${target} ${JSON.stringify(authorization)} → ${answer.status} ${JSON.stringify(answer.body)}`;
          expect([200, 401, 403, 404], context).toContain(answer.status);
          if (answer.status === 200) expect(context).toContain(token);
          if (answer.status === 401 || answer.status === 403) {
            expect(answer.headers.get('content-type'), context).toMatch(/^application\/problem\+json/);
            expect(answer.headers.get('www-authenticate'), context).toMatch(/^Bearer realm="keyward"/);
          }
        }),
        { numRuns: Number(process.env.KEYWARD_FUZZ_RUNS ?? 20) },
      );
    });

    it('answers 503 when Keyward cannot be reached, never letting the request through', async () => {
      const { token } = await server.createToken();
      const down = await start(createVerifier({ baseUrl: 'http://127.0.0.1:1', token: server.verifyToken, events: false }));
      try {
        const answer = await down.request('/scans', { authorization: `Bearer ${token}` });
        expectProblem(answer, 503, 'service_unavailable');
        expect(answer.headers.get('retry-after')).toBe('5');
      } finally {
        await down.close();
      }
    });
  });
}
