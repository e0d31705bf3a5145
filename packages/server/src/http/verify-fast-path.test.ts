import { DEFAULT_TOKEN_PREFIXES, generateToken } from '@keyward/core';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteTestDatabase } from '../storage/test-databases.ts';
import { bearer, createTestApp, expectInsufficientScope, expectInvalidToken, expectProblem, expectUnauthenticated, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';

// The fast path answers POST /api/v1/verify over a real socket, in front of
// Fastify; app.inject always goes through Fastify's route. Each test sends the
// same request both ways and expects the same answer.

type Answer = LightMyRequestResponse;
/** Well-formed (its checksum holds) and stored nowhere. */
const UNKNOWN = generateToken(DEFAULT_TOKEN_PREFIXES.personal);

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function start(env: Record<string, string> = {}) {
  const app = await createTestApp(openSqliteTestDatabase, { env });
  t = app;
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.app.server.address() as { port: number };
  const owner = await ownerToken(app, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'clients:manage', 'keyward:verify', 'scans:*'] });
  const client = await app.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(owner), payload: { name: 'gateway' } });
  const issued = await app.app.inject({ method: 'POST', url: `/api/v1/clients/${json(client).id}/tokens`, headers: bearer(owner), payload: { name: 'verifier', scopes: ['keyward:verify'] } });
  const caller = json(issued).token as string;
  /** Over the socket: the fast path's turn. The answer in app.inject's shape, so the usual assertions apply. */
  async function overHttp(body: string | Record<string, unknown>, headers: Record<string, string> = {}, method = 'POST'): Promise<Answer> {
    const response = await fetch(`http://127.0.0.1:${address.port}/api/v1/verify`, {
      method,
      headers: { 'content-type': 'application/json', ...bearer(caller), ...headers },
      ...(method === 'POST' ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return {
      statusCode: response.status,
      headers: Object.fromEntries(response.headers),
      body: text,
      json: () => JSON.parse(text) as unknown,
    } as unknown as Answer;
  }
  function throughFastify(body: string | Record<string, unknown>, headers: Record<string, string> = {}): Promise<Answer> {
    return app.app.inject({ method: 'POST', url: '/api/v1/verify', headers: { 'content-type': 'application/json', ...bearer(caller), ...headers }, payload: typeof body === 'string' ? body : JSON.stringify(body) });
  }
  const answered = () => app.context.verifyFastPath?.answered ?? 0;
  /** GET /api/v1/authz with the judged token as the bearer, over the socket or through Fastify. */
  async function authz(query: string, token: string | null, via: 'http' | 'fastify'): Promise<Answer> {
    const headers: Record<string, string> = token === null ? {} : bearer(token);
    if (via === 'fastify') return app.app.inject({ method: 'GET', url: `/api/v1/authz${query}`, headers });
    const response = await fetch(`http://127.0.0.1:${address.port}/api/v1/authz${query}`, { headers });
    const text = await response.text();
    return { statusCode: response.status, headers: Object.fromEntries(response.headers), body: text, json: () => JSON.parse(text) as unknown } as unknown as Answer;
  }
  return { app, owner, caller, overHttp, throughFastify, answered, authz };
}

/** A POST /api/v1/verify request as bytes on the wire. */
function verifyRequest(caller: string, body: string | Record<string, unknown>): string {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return `POST /api/v1/verify HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nauthorization: Bearer ${caller}\r\n\r\n${payload}`;
}

/** Sends requests pipelined in one write on one connection; their answers, in the order they came. */
function pipelined(port: number, requests: string[]): Promise<{ status: number; body: Record<string, unknown> }[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const answers: { status: number; body: Record<string, unknown> }[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (;;) {
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) break;
        const head = received.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
        if (received.length < end + 4 + length) break;
        answers.push({ status: Number(head.slice(9, 12)), body: JSON.parse(received.subarray(end + 4, end + 4 + length).toString()) as Record<string, unknown> });
        received = received.subarray(end + 4 + length);
      }
      if (answers.length === requests.length) {
        socket.destroy();
        resolve(answers);
      }
    });
    socket.write(requests.join(''));
  });
}

/** The parts of two answers that must agree (the request id and the timing differ by design). */
function forwardAuth(answer: Answer) {
  const headers = answer.headers;
  const keyward = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('x-keyward-') || name.startsWith('ratelimit-')));
  return { ...comparable(answer), keyward };
}

function comparable(answer: Answer) {
  const body = answer.body ? (JSON.parse(answer.body) as Record<string, unknown>) : null;
  const headers = answer.headers;
  return {
    status: answer.statusCode,
    body,
    contentType: headers['content-type'],
    security: [headers['x-content-type-options'], headers['referrer-policy'], headers['content-security-policy'], headers['cache-control']],
    challenge: headers['www-authenticate'],
    retryAfter: headers['retry-after'],
  };
}

describe('POST /api/v1/verify fast path', () => {
  it('answers a well-formed request itself, exactly as the Fastify route does', async () => {
    const s = await start();
    const token = await passwordToken(s.app, { scopes: ['scans:read'], metadata: { team: 'red' }, expiresInDays: 30 });
    const fast = await s.overHttp({ token: token.token, scopes: ['scans:read'] });
    expect(s.answered()).toBe(1);
    expect(fast.statusCode).toBe(200);
    expect(json(fast)).toMatchObject({ valid: true, code: 'VALID', token: { id: token.id, scopes: ['scans:read'], metadata: { team: 'red' }, expiresAt: expect.stringMatching(/Z$/) } });
    expect(fast.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(comparable(fast)).toEqual(comparable(await s.throughFastify({ token: token.token, scopes: ['scans:read'] })));
  });

  it('gives the length of an answer with characters beyond ASCII in bytes, the first time and from the remembered answer', async () => {
    const s = await start();
    const token = await passwordToken(s.app, { scopes: ['scans:read'], metadata: { team: 'rouge équipe ✓' } });
    for (let request = 0; request < 2; request++) {
      const fast = await s.overHttp({ token: token.token });
      expect(json(fast)).toMatchObject({ valid: true, token: { metadata: { team: 'rouge équipe ✓' } } });
      expect(Number(fast.headers['content-length'])).toBe(Buffer.byteLength(fast.body));
      expect(Buffer.byteLength(fast.body)).toBeGreaterThan(fast.body.length);
    }
    expect(s.answered()).toBe(2);
  });

  it.each([
    ['a scope the token lacks', (token: string) => ({ token, scopes: ['scans:write'] })],
    ['a require expression it fails', (token: string) => ({ token, require: 'scans:write OR scans:delete' })],
    ['an unknown token', () => ({ token: UNKNOWN })],
    ['a malformed token', () => ({ token: 'not-a-token' })],
  ])('answers %s with the same code as the route', async (_case, body) => {
    const s = await start();
    const token = await passwordToken(s.app, { scopes: ['scans:read'] });
    const fast = await s.overHttp(body(token.token));
    expect(s.answered()).toBe(1);
    expect(comparable(fast)).toEqual(comparable(await s.throughFastify(body(token.token))));
  });

  it("spends a quota exactly once a request and answers what is left", async () => {
    const s = await start();
    const token = await passwordToken(s.app, { scopes: ['scans:read'], remaining: 1 });
    expect(json(await s.overHttp({ token: token.token }))).toMatchObject({ valid: true, code: 'VALID', remaining: 0 });
    expect(json(await s.overHttp({ token: token.token }))).toMatchObject({ valid: false, code: 'USAGE_EXCEEDED' });
    expect(s.answered()).toBe(2);
  });

  it('answers requests that arrive together, each with the answer to its own question', async () => {
    const s = await start();
    const reader = await passwordToken(s.app, { scopes: ['scans:read'] });
    const writer = await passwordToken(s.app, { scopes: ['scans:write'] });
    const revoked = await passwordToken(s.app, { scopes: ['scans:read'] });
    const revoke = await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(s.owner) });
    expect(revoke.statusCode, revoke.body).toBeLessThan(300);
    const questions: [body: string | Record<string, unknown>, status: number, code: string, tokenId: string | undefined][] = [
      [{ token: reader.token, scopes: ['scans:read'] }, 200, 'VALID', reader.id],
      [{ token: writer.token, scopes: ['scans:read'] }, 200, 'INSUFFICIENT_SCOPE', undefined],
      [{ token: writer.token, scopes: ['scans:write'] }, 200, 'VALID', writer.id],
      [{ token: revoked.token }, 200, 'REVOKED', undefined],
      [{ token: UNKNOWN }, 200, 'NOT_FOUND', undefined],
      [{ token: 'not-a-token' }, 200, 'MALFORMED', undefined],
      // Refused by the route (replayed through Fastify) in the same turn as the others.
      ['{"token": ', 400, 'validation_failed', undefined],
    ];
    const asked = Array.from({ length: 42 }, (_, index) => questions[index % questions.length]!);
    // On many connections at once, and pipelined on one: its requests are all read in one turn.
    const answers = await Promise.all(asked.map(([body]) => s.overHttp(body)));
    const port = (s.app.app.server.address() as { port: number }).port;
    const inOneTurn = await pipelined(port, asked.map(([body]) => verifyRequest(s.caller, body)));
    for (const received of [answers.map((answer) => ({ status: answer.statusCode, body: json(answer) })), inOneTurn]) {
      expect(received.map((answer) => [answer.status, answer.body.code, (answer.body.token as { id?: string } | undefined)?.id])).toEqual(asked.map(([, status, code, tokenId]) => [status, code, tokenId]));
    }
    expect(s.answered()).toBe(72);
  });

  it('answers the others when a client goes away before its answer is written', async () => {
    const s = await start();
    const reader = await passwordToken(s.app, { scopes: ['scans:read'] });
    const port = (s.app.app.server.address() as { port: number }).port;
    const leaving = Array.from({ length: 5 }, () => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(verifyRequest(s.caller, { token: reader.token }).repeat(3), () => socket.destroy());
      return socket;
    });
    const staying = await Promise.all(Array.from({ length: 10 }, () => s.overHttp({ token: reader.token })));
    expect(staying.map((answer) => json(answer).code)).toEqual(Array(10).fill('VALID'));
    expect(leaving.every((socket) => socket.destroyed)).toBe(true);
    expect(json(await s.overHttp({ token: reader.token }))).toMatchObject({ valid: true, code: 'VALID' });
  });

  it('refuses a caller without keyward:verify, a revoked caller and an unknown one, as the route does', async () => {
    const s = await start();
    const { token: plain } = await passwordToken(s.app, { scopes: ['scans:read'] });
    const withoutScope = await s.overHttp({ token: plain }, bearer(plain));
    expectInsufficientScope(withoutScope);
    expect(comparable(withoutScope)).toEqual(comparable(await s.throughFastify({ token: plain }, bearer(plain))));

    const revoked = await passwordToken(s.app, { scopes: ['keyward:verify'] });
    const revoke = await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(s.owner) });
    expect(revoke.statusCode, revoke.body).toBeLessThan(300);
    const refused = await s.overHttp({ token: plain }, bearer(revoked.token));
    expectInvalidToken(refused);
    expect(json(refused).detail).toBe('The token has been revoked.');

    expectInvalidToken(await s.overHttp({ token: plain }, bearer(UNKNOWN)));
    expect(s.answered()).toBe(3);
  });

  it.each([
    ['malformed JSON', '{"token": ', 'validation_failed'],
    ['a field the schema does not know', { token: 'x', extra: true }, 'validation_failed'],
    ['a NUL character in the token', { token: 'kw_pat_\u0000' }, 'validation_failed'],
    ['an ip that is not an address', { token: 'x', ip: 'not-an-ip' }, 'validation_failed'],
    ['a prototype-poisoning key', '{"token": "x", "__proto__": {"valid": true}}', 'validation_failed'],
    ['a constructor-poisoning key', '{"token": "x", "constructor": {"prototype": {"valid": true}}}', 'validation_failed'],
    ['a body with a byte-order mark', '\uFEFF{"token": "x", "scopes": "scans:read"}', 'validation_failed'],
  ])('leaves %s to the route, which refuses it before anything is counted', async (_case, body, code) => {
    const s = await start();
    const fast = await s.overHttp(body);
    const routed = await s.throughFastify(body);
    expectProblem(fast, 400, code);
    expect(comparable(fast)).toEqual(comparable(routed));
    expect(s.answered()).toBe(0);
  });

  it('answers random questions, well-formed or not, exactly as the Fastify route does', async () => {
    // Each question goes both ways, so failed verifications count twice against 127.0.0.1: no limit here.
    const s = await start({ KEYWARD_VERIFY_FAILURES_PER_IP: '1000000' });
    const valid = await passwordToken(s.app, { scopes: ['scans:read', 'scans:write'], expiresInDays: 30 });
    const revoked = await passwordToken(s.app, { scopes: ['scans:read'] });
    expect((await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(s.owner) })).statusCode).toBeLessThan(300);
    const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }));
    const question = fc.record(
      {
        token: fc.oneof(fc.constantFrom(valid.token, revoked.token, UNKNOWN, valid.token.slice(0, -1), ''), text),
        scopes: fc.array(fc.oneof(fc.constantFrom('scans:read', 'scans:write', 'scans:*', 'tokens:read'), text), { maxLength: 3 }),
        require: fc.oneof(fc.constantFrom('scans:read AND scans:write', 'scans:read OR (tokens:read', '()', ''), text),
        resource: text,
        ip: fc.oneof(fc.constantFrom('203.0.113.9', '::1', '999.1.1.1'), text),
        cost: fc.oneof(fc.integer({ min: -2, max: 3 }), fc.double()),
      },
      { requiredKeys: [] },
    );
    const bodies = fc.oneof(
      { weight: 4, arbitrary: question.map((body) => JSON.stringify(body)) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((body) => JSON.stringify(body)) },
      { weight: 1, arbitrary: text },
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const fast = await s.overHttp(body);
        expect(fast.statusCode, `${body} → ${fast.body}`).toBeLessThan(500);
        expect(comparable(fast), body).toEqual(comparable(await s.throughFastify(body)));
      }),
      { numRuns: Number(process.env.KEYWARD_FUZZ_RUNS ?? 60) },
    );
  });

  it('hands Fastify every other request untouched', async () => {
    const s = await start();
    expectProblem(await s.overHttp('token=x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    expectUnauthenticated(await s.overHttp({ token: 'x' }, { authorization: '' }));
    expectProblem(await s.overHttp('', {}, 'GET'), 405, 'method_not_allowed');
    expectProblem(await s.overHttp({ token: 'x'.repeat(300_000) }), 413, 'payload_too_large');
    expect(s.answered()).toBe(0);
  });

  it('logs and counts its requests as Fastify does', async () => {
    const s = await start();
    s.app.logs.length = 0;
    await s.overHttp({ token: 'not-a-token' });
    const lines = s.app.logs.join('');
    expect(lines).toMatch(/"reqId":"[^"]+","req":\{"method":"POST","url":"\/api\/v1\/verify"[^}]*\},"msg":"incoming request"/);
    expect(lines).toMatch(/"res":\{"statusCode":200\},"responseTime":[\d.]+,"msg":"request completed"/);
    expect(lines).not.toContain(s.caller);
    const metrics = await s.app.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/keyward_http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/verify"[^}]*status_code="200"[^}]*\} 1/);
  });

  it('sees the client behind a trusted proxy, as Fastify does', async () => {
    const s = await start({ KEYWARD_TRUSTED_PROXIES: '127.0.0.1/32' });
    const fenced = await passwordToken(s.app, { scopes: ['keyward:verify'], allowedIps: ['203.0.113.0/24'] });
    const question = { token: 'not-a-token' };
    expect((await s.overHttp(question, { ...bearer(fenced.token), 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' })).statusCode).toBe(200);
    const https = await s.overHttp(question, { 'x-forwarded-proto': 'https' });
    expect(https.headers['strict-transport-security']).toMatch(/max-age=/);
    const elsewhere = await s.overHttp(question, { ...bearer(fenced.token), 'x-forwarded-for': '198.51.100.1' });
    expectInvalidToken(elsewhere);
    expect(json(elsewhere).detail).toBe('The token may not be used from this address.');
  });

  it('answers 503 with Retry-After when storage is away, never a 500', async () => {
    const s = await start();
    await s.overHttp({ token: 'not-a-token' }); // the caller is cached now
    await s.app.database.close();
    const fast = await s.overHttp({ token: UNKNOWN });
    expectProblem(fast, 503, 'service_unavailable');
    expect(fast.headers['retry-after']).toMatch(/^\d+$/);
    t = null; // closed by hand below: the database is gone
    await s.app.app.close();
  });

  describe('GET /api/v1/authz', () => {
    it('allows a token with what the route needs, with the same X-Keyward headers as the route', async () => {
      const s = await start();
      const token = await passwordToken(s.app, { scopes: ['scans:read'] });
      const fast = await s.authz('?scopes=scans:read', token.token, 'http');
      expect(s.answered()).toBe(1);
      expect(fast.statusCode).toBe(200);
      expect(fast.headers['x-keyward-token-id']).toBe(token.id);
      expect(forwardAuth(fast)).toEqual(forwardAuth(await s.authz('?scopes=scans:read', token.token, 'fastify')));
    });

    it.each([
      ['a missing scope', '?scopes=scans:write'],
      ['a failed require expression', '?require=scans%3Awrite%20OR%20scans%3Adelete'],
      ['no question at all', ''],
    ])('answers %s as the route does', async (_case, query) => {
      const s = await start();
      const token = await passwordToken(s.app, { scopes: ['scans:read'] });
      const fast = await s.authz(query, token.token, 'http');
      expect(forwardAuth(fast)).toEqual(forwardAuth(await s.authz(query, token.token, 'fastify')));
      expect(s.answered()).toBe(1);
    });

    it('answers a repeated question from what is true now: a PATCH shows in the next X-Keyward headers, a revoke in the next refusal', async () => {
      const s = await start();
      const token = await passwordToken(s.app, { scopes: ['scans:read', 'scans:write'] });
      const other = await passwordToken(s.app, { scopes: ['scans:read'] });
      const ask = (presented: string) => s.authz('?scopes=scans:read', presented, 'http');
      expect((await ask(token.token)).headers['x-keyward-scopes']).toBe('scans:read scans:write');
      // The same question about another token is answered for that token.
      const second = await ask(other.token);
      expect(second.headers['x-keyward-token-id']).toBe(other.id);
      expect(second.headers['x-keyward-scopes']).toBe('scans:read');

      const patched = await s.app.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${token.id}`, headers: bearer(s.owner), payload: { scopes: ['scans:read'] } });
      expect(patched.statusCode, patched.body).toBe(200);
      const afterPatch = await ask(token.token);
      expect(afterPatch.statusCode).toBe(200);
      expect(afterPatch.headers['x-keyward-scopes']).toBe('scans:read');

      await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(s.owner) });
      expectInvalidToken(await ask(token.token));
      expect(s.answered()).toBe(4);
    });

    it('refuses an unknown, a revoked and a malformed token with a Bearer challenge, as the route does', async () => {
      const s = await start();
      const revoked = await passwordToken(s.app, { scopes: ['scans:read'] });
      await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: bearer(s.owner) });
      for (const token of [UNKNOWN, revoked.token, 'not-a-token']) {
        const fast = await s.authz('?scopes=scans:read', token, 'http');
        expectInvalidToken(fast);
        expect(forwardAuth(fast)).toEqual(forwardAuth(await s.authz('?scopes=scans:read', token, 'fastify')));
      }
    });

    it('answers random questions about random tokens exactly as the route does', async () => {
      const s = await start({ KEYWARD_VERIFY_FAILURES_PER_IP: '1000000' });
      const valid = await passwordToken(s.app, { scopes: ['scans:read', 'scans:write'] });
      const pair = fc.tuple(
        fc.oneof({ weight: 5, arbitrary: fc.constantFrom('scopes', 'require', 'resource') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
        fc.oneof(fc.constantFrom('scans:read', 'scans:read,scans:write', 'scans:write OR tokens:read', '(scans:read', 'res_0000', ''), fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 20 })),
      );
      // Header values are printable ASCII (fetch refuses the rest before sending).
      const token = fc.oneof(fc.constantFrom(valid.token, UNKNOWN, valid.token.slice(0, -1)), fc.string({ maxLength: 60 }));
      await fc.assert(
        fc.asyncProperty(fc.array(pair, { maxLength: 3 }), token, async (pairs, presented) => {
          const query = pairs.length === 0 ? '' : `?${new URLSearchParams(pairs).toString()}`;
          const fast = await s.authz(query, presented, 'http');
          expect(fast.statusCode, `${query} ${presented} → ${fast.body}`).toBeLessThan(500);
          expect(forwardAuth(fast), `${query} ${presented}`).toEqual(forwardAuth(await s.authz(query, presented, 'fastify')));
        }),
        { numRuns: Number(process.env.KEYWARD_FUZZ_RUNS ?? 60) },
      );
    });

    it('leaves a query the route refuses, and a request without a token, to the route', async () => {
      const s = await start();
      const token = await passwordToken(s.app, { scopes: ['scans:read'] });
      for (const query of ['?scopes=a&scopes=b', '?unknown=1', '?require=scans%3Aread%20AND', '?resource=not-a-resource-id']) {
        const fast = await s.authz(query, token.token, 'http');
        expectProblem(fast, 400, 'validation_failed');
        expect(comparable(fast)).toEqual(comparable(await s.authz(query, token.token, 'fastify')));
      }
      expectUnauthenticated(await s.authz('?scopes=scans:read', null, 'http'));
      expect(s.answered()).toBe(0);
    });
  });

  describe("a connection's caller", () => {
    /** Requests on one keep-alive connection: each answer says which local port (which connection) carried it. */
    function oneConnection(port: number) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const send = (caller: string, body: Record<string, unknown>) =>
        new Promise<{ status: number; body: Record<string, unknown>; via: number | undefined }>((resolve, reject) => {
          const payload = JSON.stringify(body);
          const req = request(
            { host: '127.0.0.1', port, path: '/api/v1/verify', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...bearer(caller) } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>, via: res.socket?.localPort }));
            },
          );
          req.on('error', reject);
          req.end(payload);
        });
      return { send, close: () => agent.destroy() };
    }

    it('is judged again on every request: revoked between two requests on one connection, it is refused at the second', async () => {
      const s = await start();
      const { token: plain } = await passwordToken(s.app, { scopes: ['scans:read'] });
      const caller = await passwordToken(s.app, { scopes: ['keyward:verify'] });
      const connection = oneConnection((s.app.app.server.address() as { port: number }).port);
      try {
        const first = await connection.send(caller.token, { token: plain });
        expect(first.body).toMatchObject({ valid: true, code: 'VALID' });
        const revoke = await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${caller.id}`, headers: bearer(s.owner) });
        expect(revoke.statusCode, revoke.body).toBeLessThan(300);
        const second = await connection.send(caller.token, { token: plain });
        expect(second.via).toBe(first.via);
        expect(second.status).toBe(401);
        expect(second.body.detail).toBe('The token has been revoked.');
        expect(s.answered()).toBe(2);
      } finally {
        connection.close();
      }
    });

    it('stands on its verification while nothing changes, and is refused at the first request after it is revoked', async () => {
      const s = await start();
      const { token: plain } = await passwordToken(s.app, { scopes: ['scans:read'] });
      const caller = await passwordToken(s.app, { scopes: ['keyward:verify'] });
      const reaffirm = vi.spyOn(s.app.context.verifier, 'reaffirm');
      const connection = oneConnection((s.app.app.server.address() as { port: number }).port);
      try {
        // The first request verifies the caller and keeps it; the second verifies it by its key and stands on it; the rest reaffirm.
        const answers = [];
        for (let request = 0; request < 4; request++) answers.push(await connection.send(caller.token, { token: plain }));
        expect(answers.map((answer) => answer.body.code)).toEqual(['VALID', 'VALID', 'VALID', 'VALID']);
        expect(new Set(answers.map((answer) => answer.via)).size).toBe(1);
        expect(reaffirm.mock.results.map((result) => result.value)).toEqual([true, true]);
        const revoke = await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${caller.id}`, headers: bearer(s.owner) });
        expect(revoke.statusCode, revoke.body).toBeLessThan(300);
        const refused = await connection.send(caller.token, { token: plain });
        expect(refused.via).toBe(answers[0]!.via);
        expect([refused.status, refused.body.detail]).toEqual([401, 'The token has been revoked.']);
        expect(reaffirm.mock.results.map((result) => result.value)).toEqual([true, true, false]);
      } finally {
        connection.close();
      }
    });

    it('stands for its own bytes only: another token on the same connection is judged as itself', async () => {
      const s = await start();
      const { token: plain } = await passwordToken(s.app, { scopes: ['scans:read'] });
      const connection = oneConnection((s.app.app.server.address() as { port: number }).port);
      // The caller with its last character changed: same length, checksum broken.
      const last = s.caller.at(-1) === 'A' ? 'B' : 'A';
      const tampered = `${s.caller.slice(0, -1)}${last}`;
      try {
        const valid = await connection.send(s.caller, { token: plain });
        expect(valid.body).toMatchObject({ valid: true, code: 'VALID' });
        const answers = [await connection.send(tampered, { token: plain }), await connection.send(UNKNOWN, { token: plain }), await connection.send(plain, { token: plain })];
        expect(answers.map((answer) => answer.via)).toEqual([valid.via, valid.via, valid.via]);
        expect(answers.map((answer) => [answer.status, answer.body.code, answer.body.detail])).toEqual([
          [401, 'unauthenticated', 'The token is malformed.'],
          [401, 'unauthenticated', 'The token is not valid.'],
          [403, 'insufficient_scope', expect.any(String)],
        ]);
        // And the first caller is still itself.
        expect((await connection.send(s.caller, { token: plain })).body).toMatchObject({ valid: true, code: 'VALID' });
      } finally {
        connection.close();
      }
    });
  });

  it('is off with KEYWARD_VERIFY_FAST_PATH=false: Fastify answers everything', async () => {
    const s = await start({ KEYWARD_VERIFY_FAST_PATH: 'false' });
    const answer = await s.overHttp({ token: 'not-a-token' });
    expect(json(answer)).toEqual({ valid: false, code: 'MALFORMED' });
    expect(s.app.context.verifyFastPath).toBeNull();
  });
});
