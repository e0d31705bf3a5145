// Every error is problem+json, even those Node's HTTP parser answers before
// Fastify sees a request, and no error repeats a token the caller pasted in.
import { generateToken } from '@keyward/core';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../storage/test-databases.ts';
import { bearer, createTestApp, expectProblem, ownerToken, type TestApp } from '../testing/test-app.ts';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes as they are (inject() would skip the HTTP parser) and reads the answer until the server closes. */
function rawRequest(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {}); // the server may reset after answering; what arrived is what counts
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      if (!status) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status, headers, body });
    });
    socket.write(request);
  });
}

function expectRawProblem(answer: RawAnswer, status: number, code: string): Record<string, any> {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(answer.headers['x-content-type-options']).toBe('nosniff');
  expect(answer.headers['content-security-policy']).toContain("frame-ancestors 'self'");
  const body = JSON.parse(answer.body) as Record<string, any>;
  expect(body).toMatchObject({ type: `urn:keyward:problem:${code}`, status, code, title: expect.any(String), detail: expect.stringMatching(/.+/) });
  return body;
}

describeEachDialect('error answers', (open) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp(open);
  });
  afterEach(async () => {
    await t.close();
  });

  describe('from the HTTP parser, on a listening server', () => {
    let port: number;
    beforeEach(async () => {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      port = typeof address === 'object' && address ? address.port : 0;
    });

    it('answers oversized headers with 431 problem+json payload_too_large', async () => {
      const answer = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expectRawProblem(answer, 431, 'payload_too_large');
    });

    it('answers an oversized URL with 431 problem+json payload_too_large', async () => {
      const answer = await rawRequest(port, `GET /api/v1/tokens?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      expectRawProblem(answer, 431, 'payload_too_large');
    });

    it('answers bytes that are not HTTP with 400 problem+json validation_failed', async () => {
      const answer = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n');
      expectRawProblem(answer, 400, 'validation_failed');
    });

    it('still answers an ordinary request on the same server', async () => {
      const answer = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      expect(answer.status).toBe(200);
    });
  });

  describe('with a token pasted where it does not belong', () => {
    const pasted = generateToken('kw_pat');

    it('does not repeat it from a path of a 404', async () => {
      const response = await t.app.inject({ method: 'GET', url: `/api/v1/nothing/${pasted}` });
      const body = expectProblem(response, 404, 'not_found');
      expect(response.body).not.toContain(pasted);
      expect(body.instance).toBe('/api/v1/nothing/[REDACTED]');
    });

    it('does not repeat it from a path parameter, nor from a wrong method on that path', async () => {
      const owner = await ownerToken(t);
      const invalid = await t.app.inject({ method: 'GET', url: `/api/v1/tokens/${pasted}`, headers: bearer(owner) });
      expectProblem(invalid, 400, 'validation_failed');
      expect(invalid.body).not.toContain(pasted);
      const wrongMethod = await t.app.inject({ method: 'PUT', url: `/api/v1/tokens/${pasted}`, headers: bearer(owner) });
      expectProblem(wrongMethod, 405, 'method_not_allowed');
      expect(wrongMethod.body).not.toContain(pasted);
    });

    it('does not repeat it from scopes or allowedIps of a create request', async () => {
      const owner = await ownerToken(t);
      for (const payload of [{ name: 'x', scopes: [pasted] }, { name: 'x', allowedIps: [pasted] }, { name: 'x', scopes: ['tokens:read'], allowedIps: ['10.0.0.0/8', pasted] }]) {
        const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(owner), payload });
        expectProblem(response, 400, 'validation_failed');
        expect(response.body).not.toContain(pasted);
      }
    });

    it('does not repeat it from the name of an unknown field', async () => {
      const owner = await ownerToken(t);
      const response = await t.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: bearer(owner), payload: { name: 'x', [pasted]: true } });
      expectProblem(response, 400, 'validation_failed');
      expect(response.body).not.toContain(pasted);
    });
  });
});
