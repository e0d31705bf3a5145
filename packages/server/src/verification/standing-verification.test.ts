// A management verification that later ones may stand on (Verifier.reaffirm):
// it holds while nothing it was judged on changed, and ends at the first
// invalidation, when its time is up, or for another address.
import { DEFAULT_TOKEN_PREFIXES, generateToken } from '@keyward/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteTestDatabase } from '../storage/test-databases.ts';
import { bearer, createTestApp, json, ownerToken, passwordToken, type TestApp } from '../testing/test-app.ts';
import { tokenCacheKey, type StandingVerification } from './verifier.ts';

const IP = '203.0.113.7';
const OTHER_IP = '198.51.100.9';

let t: TestApp | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function start(body: Record<string, unknown> = {}) {
  t = await createTestApp(openSqliteTestDatabase, { env: { KEYWARD_VERIFY_FAILURES_PER_IP: '3' } });
  const app = t;
  const owner = await ownerToken(app, { scopes: ['tokens:read', 'tokens:write', 'tokens:manage', 'keyward:verify'] });
  const caller = await passwordToken(app, { scopes: ['keyward:verify'], ...body });
  const { verifier } = app.context;
  const key = tokenCacheKey(caller.token);
  /** The caller's management verification, by its cache key, asking what it can stand for. */
  const judge = (ip: string | null = IP) => verifier.verify(caller.token, { ip }, { entryPoint: 'management', spendQuota: false, cacheKey: key, standing: true });
  /** A standing verification, from a cache hit (the first verification reads storage). */
  async function standing(): Promise<StandingVerification> {
    await judge();
    const outcome = await judge();
    expect(outcome.result.code).toBe('VALID');
    expect(outcome.standing).toBeDefined();
    return outcome.standing!;
  }
  const revoke = async (id: string) => expect((await app.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(owner) })).statusCode).toBeLessThan(300);
  return { app, owner, caller, verifier, judge, standing, revoke };
}

describe('a standing management verification', () => {
  it('comes from a cache hit, not from a read of storage, and holds while nothing changes', async () => {
    const s = await start();
    const first = await s.judge();
    expect(first.result.code).toBe('VALID');
    expect(first.standing).toBeUndefined();
    const second = await s.judge();
    expect(second.standing).toMatchObject({ ip: IP, generation: s.verifier.cache.generation });
    expect(second.standing!.compiled.id).toBe(s.caller.id);
    expect([s.verifier.reaffirm(second.standing!, IP), s.verifier.reaffirm(second.standing!, IP)]).toEqual([true, true]);
  });

  it('ends at any invalidation, even of another token; the caller revoked then is refused', async () => {
    const s = await start();
    const other = await passwordToken(s.app, { scopes: ['scans:read'] });
    const standing = await s.standing();
    await s.revoke(other.id);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
    const again = await s.standing();
    await s.revoke(s.caller.id);
    expect(s.verifier.reaffirm(again, IP)).toBe(false);
    expect((await s.judge()).result.code).toBe('REVOKED');
  });

  it('ends at a change of the owner: a disabled caller is refused at its next verification', async () => {
    const s = await start();
    const standing = await s.standing();
    const patched = await s.app.app.inject({ method: 'PATCH', url: `/api/v1/tokens/${s.caller.id}`, headers: bearer(s.owner), payload: { enabled: false } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
    expect((await s.judge()).result.code).toBe('DISABLED');
  });

  it('ends when the cache would read the token afresh (its TTL)', async () => {
    const s = await start();
    const standing = await s.standing();
    s.app.clock.advance(30_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(true);
    s.app.clock.advance(30_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
  });

  it("ends at the token's expiry, and the expired caller is refused", async () => {
    const s = await start({ expiresInDays: 1 });
    const expiresAt = new Date(s.caller.body.expiresAt as string);
    const untilExpiry = expiresAt.getTime() - s.app.clock.now().getTime();
    // Close enough to the expiry that the entry's TTL outlives the token.
    s.app.clock.advance(untilExpiry - 20_000);
    const standing = await s.standing();
    expect(standing.untilMs).toBe(expiresAt.getTime());
    s.app.clock.advance(19_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(true);
    s.app.clock.advance(1_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
    expect((await s.judge()).result.code).toBe('EXPIRED');
  });

  it("ends at the end of a rotated-out secret's grace, and the old secret is refused then", async () => {
    const s = await start();
    const rotated = await s.app.app.inject({ method: 'POST', url: `/api/v1/tokens/${s.caller.id}/rotate`, headers: bearer(s.owner), payload: { gracePeriodSeconds: 20 } });
    expect(rotated.statusCode, rotated.body).toBeLessThan(300);
    const standing = await s.standing();
    expect(standing.untilMs).toBe(s.app.clock.now().getTime() + 20_000);
    s.app.clock.advance(19_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(true);
    s.app.clock.advance(1_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
    expect((await s.judge()).result.code).toBe('REVOKED');
  });

  it('holds for its own address only, and not once the address is blocked for failed verifications', async () => {
    const s = await start();
    const standing = await s.standing();
    expect(s.verifier.reaffirm(standing, OTHER_IP)).toBe(false);
    expect(s.verifier.reaffirm(standing, null)).toBe(false);
    const unknown = generateToken(DEFAULT_TOKEN_PREFIXES.personal);
    const codes: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) codes.push((await s.verifier.verify(unknown, { ip: IP }, { entryPoint: 'management', spendQuota: false })).result.code);
    // The fourth failure spends the window; the address is refused from the next verification on.
    expect(codes).toEqual(['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED']);
    expect(s.verifier.reaffirm(standing, IP)).toBe(false);
    expect((await s.judge()).result.code).toBe('RATE_LIMITED');
  });

  it('is never made for a token with a rate limit, for a question with scopes, or for another entry point', async () => {
    const limited = await start({ rateLimit: { limit: 100, windowSeconds: 60 } });
    await limited.judge();
    const again = await limited.judge();
    expect(again.result.code).toBe('VALID');
    expect(again.standing).toBeUndefined();
    const { verifier, caller } = limited;
    const plain = await passwordToken(limited.app, { scopes: ['keyward:verify'] });
    const key = tokenCacheKey(plain.token);
    await verifier.verify(plain.token, { ip: IP }, { entryPoint: 'management', spendQuota: false });
    const scoped = await verifier.verify(plain.token, { ip: IP, scopes: ['keyward:verify'] }, { entryPoint: 'management', spendQuota: false, cacheKey: key, standing: true });
    const verifyEntry = await verifier.verify(plain.token, { ip: IP }, { entryPoint: 'verify', spendQuota: true, cacheKey: key, standing: true });
    const unasked = await verifier.verify(plain.token, { ip: IP }, { entryPoint: 'management', spendQuota: false, cacheKey: key });
    expect([scoped, verifyEntry, unasked].map((outcome) => [outcome.result.code, outcome.standing])).toEqual([
      ['VALID', undefined],
      ['VALID', undefined],
      ['VALID', undefined],
    ]);
    expect(caller.id).not.toBe(plain.id);
  });

  it('counts a reaffirmed verification as a management verification and a last use', async () => {
    const s = await start();
    const standing = await s.standing();
    await s.verifier.flush();
    const before = (await s.app.app.inject({ method: 'GET', url: '/metrics' })).body;
    const count = (metrics: string) => Number(/keyward_verifications_total\{[^}]*entry_point="management"[^}]*code="VALID"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    s.app.clock.advance(5_000);
    expect(s.verifier.reaffirm(standing, IP)).toBe(true);
    expect(s.verifier.reaffirm(standing, IP)).toBe(true);
    const after = (await s.app.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(count(after) - count(before)).toBe(2);
    expect(s.verifier.lastUse.size).toBe(1);
    await s.verifier.flush();
    const stored = json(await s.app.app.inject({ method: 'GET', url: `/api/v1/tokens/${s.caller.id}`, headers: bearer(s.owner) }));
    expect(stored).toMatchObject({ lastUsedIp: IP, lastUsedAt: s.app.clock.now().toISOString() });
  });
});
