import { generateToken } from '@keyward/core';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { auditActions, bearer, createTestApp, expectProblem, json, OWNER_EMAIL, passwordToken, type TestApp } from '../testing/test-app.ts';
import { dereference } from '../testing/openapi-document.ts';
import { SERVER_VERSION } from '../version.ts';


function expectSecurityHeaders(response: LightMyRequestResponse): void {
  expect(response.headers['x-content-type-options']).toBe('nosniff');
  expect(response.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
  expect(response.headers['content-security-policy']).toContain("frame-ancestors 'self'");
}

/** A failed sign-in is the cheapest request that records the caller's IP and request id. */
async function failedLogin(t: TestApp, headers: Record<string, string>, remoteAddress = '127.0.0.1') {
  const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers, remoteAddress, payload: { email: OWNER_EMAIL, password: 'not the password at all' } });
  expect(response.statusCode).toBe(401);
  const events = await auditActions(t, { action: 'auth.login_failed' });
  expect(events).toHaveLength(1);
  return { response, event: events[0]! };
}

describeEachDialect('the HTTP edge', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.close();
  });

  describe('errors', () => {
    it('answers an unknown path with 404 not_found as problem+json', async () => {
      const body = expectProblem(await t.app.inject({ method: 'GET', url: '/no/such/thing?x=1' }), 404, 'not_found');
      expect(body.instance).toBe('/no/such/thing');
    });

    it('answers a URL with broken percent-encoding with 400 problem+json and the security headers', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens/%E0%A4%A' });
      expectProblem(response, 400, 'validation_failed');
      expectSecurityHeaders(response);
    });

    it('answers a path segment longer than any id with 400 problem+json, not 414 or 500', async () => {
      const response = await t.app.inject({ method: 'GET', url: `/api/v1/tokens/tok_${'a'.repeat(300)}` });
      expectProblem(response, 400, 'validation_failed');
      expectSecurityHeaders(response);
    });

    it('answers a NUL character in the body or the query with 400 naming the field, on every database', async () => {
      const token = (await passwordToken(t, { scopes: ['tokens:read', 'tokens:write', 'audit:read', 'clients:manage'] })).token;
      const inBody = await t.app.inject({ method: 'POST', url: '/api/v1/clients', headers: bearer(token), payload: { name: 'acme', description: 'a\u0000b' } });
      expect(expectProblem(inBody, 400, 'validation_failed').errors).toEqual([{ field: 'description', message: 'must not contain NUL characters' }]);
      const inQuery = await t.app.inject({ method: 'GET', url: '/api/v1/audit?action=token%00created', headers: bearer(token) });
      expect(expectProblem(inQuery, 400, 'validation_failed').errors).toEqual([{ field: 'action', message: 'must not contain NUL characters' }]);
    });

    it('answers a leap-second timestamp in an audit filter with 400, not 500', async () => {
      const token = (await passwordToken(t, { scopes: ['audit:read'] })).token;
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/audit?since=2016-12-31T23:59:60Z', headers: bearer(token) });
      expect(expectProblem(response, 400, 'validation_failed').errors).toEqual([{ field: 'since', message: 'is not a valid date-time' }]);
    });

    it('answers an unknown path under /api/v1 with 404, not 401', async () => {
      expectProblem(await t.app.inject({ method: 'GET', url: '/api/v1/nothing-here' }), 404, 'not_found');
    });

    it('answers a wrong method on a known path with 405 method_not_allowed and Allow', async () => {
      const response = await t.app.inject({ method: 'PUT', url: '/api/v1/tokens' });
      expectProblem(response, 405, 'method_not_allowed');
      const allowed = String(response.headers.allow).split(', ');
      expect(allowed).toEqual(expect.arrayContaining(['GET', 'POST']));
      expect(allowed).not.toContain('PUT');
    });

    it('answers a wrong method on a path with an id with 405 and Allow', async () => {
      const response = await t.app.inject({ method: 'PUT', url: '/api/v1/tokens/tok_abc123' });
      expectProblem(response, 405, 'method_not_allowed');
      expect(String(response.headers.allow).split(', ')).toEqual(expect.arrayContaining(['DELETE', 'GET', 'PATCH']));
    });

    it('answers a body over the limit with 413 payload_too_large', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'big', metadata: { blob: 'x'.repeat(t.config.bodyLimitBytes) } }),
      });
      expectProblem(response, 413, 'payload_too_large');
    });

    it('answers text/plain with 415 unsupported_media_type', async () => {
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'email=owner@example.com' });
      expectProblem(response, 415, 'unsupported_media_type');
    });

    it('answers another content type with 415 unsupported_media_type', async () => {
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/xml' }, payload: '<login/>' });
      expectProblem(response, 415, 'unsupported_media_type');
    });

    it('answers invalid JSON with 400 validation_failed', async () => {
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"email": ' });
      expectProblem(response, 400, 'validation_failed');
    });

    it('answers a schema failure with 400 and one error per field', async () => {
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: OWNER_EMAIL, password: 'x', admin: true } });
      const body = expectProblem(response, 400, 'validation_failed');
      expect(body.errors).toEqual([{ field: 'admin', message: 'is not a known field' }]);
    });

    it('answers an unexpected failure with 500 internal, telling nothing, and logs it with the request id', async () => {
      vi.spyOn(t.context.deps.store, 'findUserByEmail').mockRejectedValue(new Error('database exploded at /srv/keyward/secret-path'));
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'x-request-id': 'trace-internal-0001' }, payload: { email: OWNER_EMAIL, password: 'whatever' } });
      const body = expectProblem(response, 500, 'internal');
      expect(body.detail).toBe('Unexpected error.');
      expect(Object.keys(body).sort()).toEqual(['code', 'detail', 'instance', 'status', 'title', 'type']);
      expect(response.body).not.toContain('exploded');
      expect(response.body).not.toContain('secret-path');
      expect(response.body).not.toMatch(/at .*\.ts:\d+/);
      expectSecurityHeaders(response);

      const logged = t.logs.map((line) => JSON.parse(line)).find((line) => line.err?.message?.includes('exploded'));
      expect(logged).toMatchObject({ level: 50, reqId: 'trace-internal-0001' });
    });
  });

  describe('authentication challenges', () => {
    it('answers a request without credentials with 401 and WWW-Authenticate: Bearer realm="keyward"', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens' });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward"');
    });

    it('answers a malformed token with 401 and error="invalid_token"', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer('kw_pat_not-a-real-token') });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="keyward", error="invalid_token"/);
    });

    it('answers a well-formed but unknown token with 401 and error="invalid_token"', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(generateToken('kw_pat')) });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
    });

    it('answers an Authorization header that is not a bearer token with 401 and error="invalid_token"', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization: 'Basic b3duZXI6cGFzcw==' } });
      expectProblem(response, 401, 'unauthenticated');
      expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
    });

    it('answers a token without the needed scope with 403 and error="insufficient_scope" naming the scope', async () => {
      const { token } = await passwordToken(t, { scopes: ['scans:read'] });
      const response = await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) });
      const body = expectProblem(response, 403, 'insufficient_scope');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="keyward", error="insufficient_scope", scope="tokens:read"');
      expect(body.detail).toContain('tokens:read');
    });
  });

  describe('security headers', () => {
    it('are on a successful response', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.statusCode).toBe(200);
      expectSecurityHeaders(response);
    });

    it('are on error responses', async () => {
      const responses = await Promise.all([
        t.app.inject({ method: 'GET', url: '/nowhere' }),
        t.app.inject({ method: 'PUT', url: '/api/v1/tokens' }),
        t.app.inject({ method: 'GET', url: '/api/v1/tokens' }),
        t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'x' }),
      ]);
      expect(responses.map((response) => response.statusCode)).toEqual([404, 405, 401, 415]);
      for (const response of responses) expectSecurityHeaders(response);
    });

    it('leave out HSTS over plain http, even when an untrusted client claims X-Forwarded-Proto: https', async () => {
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).headers['strict-transport-security']).toBeUndefined();
      const claimed = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-forwarded-proto': 'https' } });
      expect(claimed.headers['strict-transport-security']).toBeUndefined();
    });

    it('ignore X-Forwarded-For when no proxy is trusted, so the recorded IP is the socket address', async () => {
      const { event } = await failedLogin(t, { 'x-forwarded-for': '198.51.100.7' });
      expect(event.ip).toBe('127.0.0.1');
    });
  });

  describe('request ids', () => {
    it('answers a fresh x-request-id and records it in the audit event', async () => {
      const { response, event } = await failedLogin(t, {});
      const id = response.headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(event.requestId).toBe(id);
    });

    it('keeps a sane incoming x-request-id', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'gateway-req.42_abc' } });
      expect(response.headers['x-request-id']).toBe('gateway-req.42_abc');
    });

    it('replaces an unsafe incoming x-request-id', async () => {
      for (const unsafe of ['short', '<script>alert(1)</script>', 'a'.repeat(65), 'id with spaces in it']) {
        const response = await t.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': unsafe } });
        expect(response.headers['x-request-id']).not.toBe(unsafe);
        expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      }
    });
  });

  describe('documentation and system routes', () => {
    it('GET /openapi.json is OpenAPI 3.1 listing the lifecycle routes with their request schemas', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(response.statusCode).toBe(200);
      const doc = json(response);
      expect(doc.openapi).toMatch(/^3\.1\./);
      expect(doc.info.version).toBe(SERVER_VERSION);
      expect(Object.keys(doc.paths['/api/v1/tokens'])).toEqual(expect.arrayContaining(['get', 'post']));
      expect(Object.keys(doc.paths['/api/v1/tokens/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
      expect(doc.paths['/api/v1/tokens/{id}/rotate']).toHaveProperty('post');
      expect(doc.paths['/api/v1/tokens/revoke-leaked']).toHaveProperty('post');
      expect(Object.keys(doc.paths['/api/v1/tokens/current'])).toEqual(expect.arrayContaining(['get', 'delete']));

      const create = dereference(doc, doc.paths['/api/v1/tokens'].post.requestBody.content['application/json'].schema);
      expect(create.additionalProperties).toBe(false);
      expect(create.required).toContain('name');
      expect(create.properties.name.pattern).toBe('^[A-Za-z0-9 ._-]{1,64}$');
      expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(['scopes', 'resources', 'expiresInDays', 'allowedIps', 'email', 'password']));
      const patch = dereference(doc, doc.paths['/api/v1/tokens/{id}'].patch.requestBody.content['application/json'].schema);
      expect(patch.additionalProperties).toBe(false);
      expect(doc.paths['/api/v1/tokens'].post.security).toEqual(expect.arrayContaining([{ bearerToken: [] }]));
    });

    it('documents a success answer and the problem answers for every operation under /api/v1', async () => {
      const doc = json(await t.app.inject({ method: 'GET', url: '/openapi.json' }));
      const operations = Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)
        .filter(([path]) => path.startsWith('/api/v1/'))
        .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, codes: Object.keys(operation.responses) })));
      expect(operations.length).toBeGreaterThan(30);
      for (const { name, codes } of operations) {
        expect(codes.some((code) => code.startsWith('2')), name).toBe(true);
        expect(codes, name).toContain('400');
      }
      // Errors are documented as problem details, and each protected operation names its scopes.
      const rotate = doc.paths['/api/v1/tokens/{id}/rotate'].post;
      expect(Object.keys(dereference(doc, rotate.responses['404']).content)).toEqual(['application/problem+json']);
      expect(rotate.description).toContain('Needs scope tokens:write or tokens:manage');
      // The token answers are described field by field, without any digest.
      const page = dereference(doc, doc.paths['/api/v1/tokens'].get.responses['200'].content['application/json'].schema);
      const listed = dereference(doc, page.properties.items.items);
      expect(Object.keys(listed.properties)).toEqual(expect.arrayContaining(['id', 'hint', 'status', 'scopes', 'resources', 'expiresAt']));
      expect(Object.keys(listed.properties)).not.toContain('digest');
    });

    it('/docs serves an HTML page', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/docs' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.body).toMatch(/<html/i);
      expectSecurityHeaders(response);
    });

    it('GET /healthz answers ok without authentication', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.statusCode).toBe(200);
      expect(json(response)).toEqual({ status: 'ok' });
    });

    it('GET /readyz answers 200 after checking the database', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(response.statusCode).toBe(200);
      expect(json(response)).toMatchObject({ status: 'ready', checks: { database: 'ok' } });
    });

    it('GET /readyz answers 503 service_unavailable when the database is gone', async () => {
      await t.database.close();
      expectProblem(await t.app.inject({ method: 'GET', url: '/readyz' }), 503, 'service_unavailable');
    });

    it('GET /api/version answers the api and server versions and a token pattern that matches real tokens', async () => {
      const response = await t.app.inject({ method: 'GET', url: '/api/version' });
      expect(response.statusCode).toBe(200);
      const body = json(response);
      expect(body).toMatchObject({ api: '1', server: SERVER_VERSION, tokenFormat: { prefixes: { personal: 'kw_pat', client: 'kw_svc' } } });
      const pattern = new RegExp(`^${body.tokenFormat.pattern}$`);
      expect(generateToken('kw_pat')).toMatch(pattern);
      expect(generateToken('kw_svc')).toMatch(pattern);
      expect(generateToken('kw_other')).not.toMatch(pattern);
      expect('kw_pat_tooshort').not.toMatch(pattern);
    });
  });
});

describeEachDialect('the HTTP edge behind a trusted proxy', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open, { env: { KEYWARD_TRUSTED_PROXIES: '127.0.0.1' } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('sends HSTS when the proxy says the request came over https', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-proto': 'https' } });
    expect(response.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
    expectSecurityHeaders(response);
  });

  it('leaves out HSTS when the proxy forwarded plain http', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-proto': 'http' } });
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('leaves out HSTS when an untrusted client sends X-Forwarded-Proto and X-Forwarded-For', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '203.0.113.9', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.7' } });
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });

  it('records the forwarded client IP from the trusted proxy', async () => {
    const { event } = await failedLogin(t, { 'x-forwarded-for': '198.51.100.7' }, '127.0.0.1');
    expect(event.ip).toBe('198.51.100.7');
  });

  it('records the socket address when an untrusted client sends X-Forwarded-For', async () => {
    const { event } = await failedLogin(t, { 'x-forwarded-for': '198.51.100.7' }, '203.0.113.9');
    expect(event.ip).toBe('203.0.113.9');
  });
});
