// Verifier.verifyNow: the same verification as verify(), answered at once when
// the decision needs no I/O, so the fast path answers a cache hit without a
// promise in between; a read of storage or a spend still comes as a promise.
import { DEFAULT_TOKEN_PREFIXES, generateToken } from '@keyward/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteTestDatabase } from '../storage/test-databases.ts';
import { bearer, createTestApp, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';
import type { VerifyContext, VerifyOutcome } from './verifier.ts';

const CONTEXT: VerifyContext = { entryPoint: 'verify', spendQuota: true };

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function start() {
  t = await createTestApp(openSqliteTestDatabase);
  const app = t;
  const question = { scopes: ['scans:read'], organizationId: app.organizationId };
  const now = (token: string) => app.context.verifier.verifyNow(token, question, CONTEXT);
  const verifications = async () => {
    const metrics = (await app.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/keyward_verifications_total\{[^}]*entry_point="verify"[^}]*code="VALID"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
  };
  return { app, now, verifications };
}

describe('Verifier.verifyNow', () => {
  it('answers a cached token at once, and a token it must read from storage as a promise, with the same answer', async () => {
    const s = await start();
    const { token } = await passwordToken(s.app, { scopes: ['scans:read'] });
    const first = s.now(token);
    expect(first).toBeInstanceOf(Promise);
    expect((await first).result.code).toBe('VALID');
    const second = s.now(token);
    expect(second).not.toBeInstanceOf(Promise);
    expect((second as VerifyOutcome).result).toEqual((await first).result);
  });

  it('answers a malformed token at once, before any lookup', async () => {
    const s = await start();
    const token = generateToken(DEFAULT_TOKEN_PREFIXES.personal);
    // Its last character changed (never to itself), so the checksum fails.
    const outcome = s.now(`${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`);
    expect(outcome).not.toBeInstanceOf(Promise);
    expect((outcome as VerifyOutcome).result.code).toBe('MALFORMED');
  });

  it('refuses a token revoked after it was cached, at the very next call', async () => {
    const s = await start();
    const owner = await ownerToken(s.app);
    const { token, id } = await passwordToken(s.app, { scopes: ['scans:read'] });
    await s.now(token);
    expect(s.now(token)).not.toBeInstanceOf(Promise);
    expect((await s.app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(owner) })).statusCode).toBeLessThan(300);
    expect((await s.now(token)).result.code).toBe('REVOKED');
  });

  it('spends a quota through a promise even on a cache hit, exactly once a call', async () => {
    const s = await start();
    const { token } = await passwordToken(s.app, { scopes: ['scans:read'], remaining: 2 });
    await s.now(token);
    const spent = s.now(token);
    expect(spent).toBeInstanceOf(Promise);
    expect((await spent).result.code).toBe('VALID');
    expect((await s.now(token)).result.code).toBe('USAGE_EXCEEDED');
  });

  it('counts an answer given at once as the verification it is', async () => {
    const s = await start();
    const { token } = await passwordToken(s.app, { scopes: ['scans:read'] });
    await s.now(token);
    const before = await s.verifications();
    s.now(token);
    s.now(token);
    expect((await s.verifications()) - before).toBe(2);
  });
});
