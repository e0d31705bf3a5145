import { describe, expect, it } from 'vitest';
import { createAnswerCache, reuseMsFor } from './answer-cache.ts';
import type { VerifiedToken, VerifyAnswer } from './verify-answer.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');

function token(id: string, owner: VerifiedToken['owner'] = { type: 'user', id: 'usr_1' }, expiresAt: string | null = null): VerifiedToken {
  return { id, name: id, kind: 'personal', owner, organizationId: 'org_1', scopes: ['scans:read'], permission: 'member', resources: [], expiresAt, metadata: {} };
}
const valid = (t: VerifiedToken, extra: Partial<VerifyAnswer> = {}): VerifyAnswer => ({ valid: true, code: 'VALID', token: t, ...extra });

describe('reuseMsFor', () => {
  it('keeps a VALID answer for the TTL, never past the token expiry', () => {
    expect(reuseMsFor(valid(token('tok_1')), 60_000, 5_000, NOW)).toBe(60_000);
    expect(reuseMsFor(valid(token('tok_1', undefined, new Date(NOW + 10_000).toISOString())), 60_000, 5_000, NOW)).toBe(10_000);
    expect(reuseMsFor(valid(token('tok_1', undefined, new Date(NOW - 1).toISOString())), 60_000, 5_000, NOW)).toBe(0);
  });

  it('never keeps answers that depend on counters: quotas, rate limits and their refusals', () => {
    const rateLimit = { limit: 5, remaining: 4, resetAt: new Date(NOW + 60_000).toISOString() };
    // Whatever the cost asked: a quota answer is asked afresh (cost 0 checks included).
    expect(reuseMsFor(valid(token('tok_1'), { remaining: 3 }), 60_000, 5_000, NOW)).toBe(0);
    expect(reuseMsFor(valid(token('tok_1'), { rateLimit }), 60_000, 5_000, NOW)).toBe(0);
    expect(reuseMsFor({ valid: false, code: 'RATE_LIMITED' }, 60_000, 5_000, NOW)).toBe(0);
    expect(reuseMsFor({ valid: false, code: 'USAGE_EXCEEDED' }, 60_000, 5_000, NOW)).toBe(0);
  });

  it('keeps REVOKED for the TTL and refusals that may change only briefly', () => {
    expect(reuseMsFor({ valid: false, code: 'REVOKED' }, 60_000, 5_000, NOW)).toBe(60_000);
    for (const code of ['NOT_FOUND', 'EXPIRED', 'DISABLED', 'INSUFFICIENT_SCOPE', 'FORBIDDEN_RESOURCE', 'IP_NOT_ALLOWED'] as const) {
      expect(reuseMsFor({ valid: false, code }, 60_000, 5_000, NOW)).toBe(5_000);
    }
  });
});

describe('createAnswerCache', () => {
  it('drops every answer about a token, and every answer about an owner', () => {
    let now = NOW;
    const cache = createAnswerCache({ ttlMs: 60_000 }, () => now);
    cache.fill('a1', valid(token('tok_a')));
    cache.fill('a2', valid(token('tok_a')));
    cache.fill('b', valid(token('tok_b', { type: 'client', id: 'cli_1' })));
    cache.fill('c', valid(token('tok_c', { type: 'user', id: 'usr_2' })));
    cache.dropTokens(['tok_a']);
    expect([cache.get('a1'), cache.get('a2')]).toEqual([undefined, undefined]);
    cache.dropOwner('client', 'cli_1');
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toMatchObject({ code: 'VALID' });
    now += 60_001;
    expect(cache.get('c')).toBeUndefined();
  });

  it('stays within its bound', () => {
    const cache = createAnswerCache({ max: 2 });
    for (const id of ['tok_1', 'tok_2', 'tok_3']) cache.fill(id, valid(token(id)));
    expect(cache.size).toBe(2);
    expect(cache.get('tok_1')).toBeUndefined();
  });
});
