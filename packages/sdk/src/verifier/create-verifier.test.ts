import { generateToken } from '@keyward/core';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeywardUnavailableError } from '../errors.ts';
import { startKeywardServer, type KeywardTestServer } from '../testing/keyward-server.ts';
import { createVerifier, type Verifier, type VerifierOptions } from './create-verifier.ts';

describe('createVerifier against a real Keyward server', () => {
  let server: KeywardTestServer;
  const verifiers: Verifier[] = [];
  let fetches: string[];

  beforeAll(async () => {
    server = await startKeywardServer({ env: { KEYWARD_LEGACY_TOKEN_PREFIXES: 'sk_live_' } });
  });
  afterAll(async () => {
    await server.close();
  });
  /** Servers a single test starts for itself. */
  const servers: KeywardTestServer[] = [];
  afterEach(async () => {
    for (const verifier of verifiers.splice(0)) await verifier.close();
    for (const own of servers.splice(0)) await own.close();
  });

  function open(options: Partial<VerifierOptions> = {}): Verifier {
    fetches = [];
    const counting: typeof fetch = (input, init) => {
      fetches.push(String(input));
      return fetch(input, init);
    };
    const verifier = createVerifier({ baseUrl: server.baseUrl, token: server.verifyToken, fetch: counting, ...options });
    verifiers.push(verifier);
    return verifier;
  }
  const verifyCalls = () => fetches.filter((url) => url.endsWith('/api/v1/verify')).length;

  it('answers VALID with the verified token, as POST /verify does', async () => {
    const verifier = open({ events: false });
    const { token, id } = await server.createToken({ scopes: ['scans:read'] });
    const answer = await verifier.verify(token, { scopes: ['scans:read'] });
    expect(answer).toMatchObject({ valid: true, code: 'VALID', token: { id, kind: 'personal', scopes: ['scans:read'], owner: { type: 'user' } } });
  });

  it('answers MALFORMED for garbage and a checksum typo without any network call', async () => {
    const verifier = open({ events: false });
    const { token } = await server.createToken();
    const typo = `${token.slice(0, 20)}${token[20] === 'a' ? 'b' : 'a'}${token.slice(21)}`;
    expect(await verifier.verify('not-a-token')).toEqual({ valid: false, code: 'MALFORMED' });
    expect(await verifier.verify(typo)).toEqual({ valid: false, code: 'MALFORMED' });
    expect(fetches).toEqual([]);
  });

  it('asks about imported keys with a legacy prefix when told the prefixes, and refuses them locally otherwise', async () => {
    const key = `sk_live_${'k3Y'.repeat(8)}`;
    const imported = await server.t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens/import',
      headers: { authorization: `Bearer ${server.owner}` },
      payload: { records: [{ externalId: 'sdk-legacy', plaintext: key, owner: { email: 'owner@example.com' }, name: 'sdk legacy', scopes: ['tokens:read'], expiresAt: new Date(Date.now() + 86_400_000).toISOString() }] },
    });
    expect(imported.json().results[0], imported.body).toMatchObject({ status: 'created' });
    expect(await open({ events: false }).verify(key)).toEqual({ valid: false, code: 'MALFORMED' });
    expect(fetches).toEqual([]);
    const answer = await open({ events: false, legacyTokenPrefixes: ['sk_live_'] }).verify(key, { scopes: ['tokens:read'] });
    expect(answer).toMatchObject({ valid: true, code: 'VALID', token: { name: 'sdk legacy' } });
  });

  it('answers a repeated question from its cache', async () => {
    const verifier = open({ events: false });
    const { token } = await server.createToken({ scopes: ['scans:read', 'scans:write'] });
    await verifier.verify(token, { scopes: ['scans:read', 'scans:write'] });
    expect(await verifier.verify(token, { scopes: ['scans:write', 'scans:read'] })).toMatchObject({ code: 'VALID' });
    expect(verifyCalls()).toBe(1);
    expect(await verifier.verify(token, { scopes: ['scans:delete'] })).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
    expect(verifyCalls()).toBe(2);
  });

  it('answers from its cache only the same token and the same question', async () => {
    const verifier = open({ events: false });
    const { token } = await server.createToken({ scopes: ['scans:read'] });
    const scopes = ['scans:read'];
    expect(await verifier.verify(token, { scopes })).toMatchObject({ code: 'VALID' });
    // The same array, changed in place: a new question, not the remembered one.
    scopes[0] = 'scans:write';
    expect(await verifier.verify(token, { scopes })).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
    expect(await verifier.verify(token, { scopes: ['scans:read'], ip: '10.1.2.3' })).toMatchObject({ code: 'VALID' });
    expect(verifyCalls()).toBe(3);
    // A cached token with one character more or a line break and more after it is another string: checked, not found.
    expect(await verifier.verify(`${token}a`, { scopes: ['scans:read'] })).toEqual({ valid: false, code: 'MALFORMED' });
    expect(await verifier.verify(`${token}\n["x"]`, { scopes: ['scans:read'] })).toEqual({ valid: false, code: 'MALFORMED' });
    expect(verifyCalls()).toBe(3);
  });

  it('asks afresh every time for a token with a quota or a rate limit, since the answer depends on counters', async () => {
    const verifier = open({ events: false });
    const quota = await server.createToken({ remaining: 2 });
    expect(await verifier.verify(quota.token)).toMatchObject({ code: 'VALID', remaining: 1 });
    expect(await verifier.verify(quota.token)).toMatchObject({ code: 'VALID', remaining: 0 });
    expect(await verifier.verify(quota.token)).toMatchObject({ code: 'USAGE_EXCEEDED' });
    const limited = await server.createToken({ rateLimit: { limit: 1, windowSeconds: 60 } });
    expect(await verifier.verify(limited.token)).toMatchObject({ code: 'VALID' });
    expect(await verifier.verify(limited.token)).toMatchObject({ code: 'RATE_LIMITED', rateLimit: { limit: 1, remaining: 0 } });
    expect(verifyCalls()).toBe(5);
  });

  it('answers any sequence of questions, first asked or from its cache, as POST /verify answers them', async () => {
    // Without the per-IP failure limit: a blocked address is the one thing the server answers
    // differently from the cache on purpose (packages/sdk/README.md, "What is cached").
    const server = await startKeywardServer({ env: { KEYWARD_VERIFY_FAILURES_PER_IP: '1000000' } });
    servers.push(server);
    const verifier = open({ events: false, baseUrl: server.baseUrl, token: server.verifyToken });
    const tokens = [
      (await server.createToken({ scopes: ['scans:read', 'scans:write'] })).token,
      (await server.createToken({ scopes: ['scans:*'], allowedIps: ['10.0.0.0/8'] })).token,
      (await server.createToken({ scopes: ['tokens:read'], expiresInDays: 1 })).token,
    ];
    const revoked = await server.createToken({ scopes: ['scans:read'] });
    const revoke = await server.t.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${revoked.id}`, headers: { authorization: `Bearer ${server.owner}` } });
    expect(revoke.statusCode, revoke.body).toBeLessThan(300);
    tokens.push(revoked.token, `${tokens[0]!.slice(0, -1)}x`, 'not-a-token');
    const scope = fc.constantFrom('scans:read', 'scans:write', 'scans:delete', 'tokens:read');
    const question = fc.record(
      {
        scopes: fc.array(scope, { maxLength: 3 }),
        require: fc.constantFrom('scans:read AND scans:write', 'scans:delete OR tokens:read', '(scans:read OR scans:write) AND scans:delete'),
        ip: fc.constantFrom('10.1.2.3', '192.0.2.7', '::1'),
      },
      { requiredKeys: [] },
    );
    /** What the server answers the same question, asked directly. */
    const direct = async (token: string, asked: Record<string, unknown>) => {
      const response = await fetch(`${server.baseUrl}/api/v1/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${server.verifyToken}` },
        body: JSON.stringify({ token, ...asked }),
      });
      return response.json() as Promise<unknown>;
    };
    // Sequences repeat questions, so later ones come from the verifier's cache.
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...tokens), question), { minLength: 1, maxLength: 6 }), async (asked) => {
        for (const [token, q] of asked) {
          const answer = await verifier.verify(token, q);
          expect(answer, JSON.stringify(q)).toEqual(await direct(token, q));
        }
      }),
      { numRuns: Number(process.env.KEYWARD_FUZZ_RUNS ?? 25) },
    );
    expect(verifyCalls()).toBeGreaterThan(0);
  });

  it("keeps answering an address's cached questions after the server blocks it for failures, and sends it every new one", async () => {
    const verifier = open({ events: false });
    const ip = '198.51.100.77';
    const known = await server.createToken({ scopes: ['scans:read'] });
    expect(await verifier.verify(known.token, { ip })).toMatchObject({ code: 'VALID' });
    // Guessing from that address: distinct well-formed tokens, each asked of the server.
    let answer = await verifier.verify(generateToken('kw_pat'), { ip });
    for (let guess = 0; guess < 200 && answer.code !== 'RATE_LIMITED'; guess++) answer = await verifier.verify(generateToken('kw_pat'), { ip });
    expect(answer).toEqual({ valid: false, code: 'RATE_LIMITED' });
    expect(await verifier.verify(known.token, { ip })).toMatchObject({ code: 'VALID' });
    const calls = verifyCalls();
    const another = await server.createToken({ scopes: ['scans:read'] });
    expect(await verifier.verify(another.token, { ip })).toEqual({ valid: false, code: 'RATE_LIMITED' });
    expect(await verifier.verify(another.token, { ip })).toEqual({ valid: false, code: 'RATE_LIMITED' });
    expect(verifyCalls()).toBe(calls + 2);
  });

  it('rejects with KeywardUnavailableError when Keyward cannot be reached or fails, never answering VALID', async () => {
    const { token } = await server.createToken();
    const unreachable = createVerifier({ baseUrl: 'http://127.0.0.1:1', token: server.verifyToken, events: false });
    await expect(unreachable.verify(token)).rejects.toBeInstanceOf(KeywardUnavailableError);
    const failing = createVerifier({ baseUrl: server.baseUrl, token: server.verifyToken, events: false, fetch: async () => new Response('{}', { status: 502 }) });
    await expect(failing.verify(token)).rejects.toMatchObject({ name: 'KeywardUnavailableError', status: 502 });
    const refused = createVerifier({ baseUrl: server.baseUrl, token: (await server.createToken({ scopes: ['scans:read'] })).token, events: false });
    await expect(refused.verify(token)).rejects.toMatchObject({ name: 'KeywardUnavailableError', status: 403 });
  });
});
