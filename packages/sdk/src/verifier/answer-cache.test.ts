import { describe, expect, it } from 'vitest';
import { createAnswerCache, QUESTIONS_PER_TOKEN, reuseMsFor } from './answer-cache.ts';
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
    cache.fill('kw_pat_a', 'q1', valid(token('tok_a')));
    cache.fill('kw_pat_a', 'q2', valid(token('tok_a')));
    cache.fill('kw_svc_b', 'q1', valid(token('tok_b', { type: 'client', id: 'cli_1' })));
    cache.fill('kw_pat_c', 'q1', valid(token('tok_c', { type: 'user', id: 'usr_2' })));
    expect(cache.size).toBe(4);
    cache.dropTokens(['tok_a']);
    expect([cache.get('kw_pat_a', 'q1'), cache.get('kw_pat_a', 'q2')]).toEqual([undefined, undefined]);
    cache.dropOwner('client', 'cli_1');
    expect(cache.get('kw_svc_b', 'q1')).toBeUndefined();
    expect(cache.get('kw_pat_c', 'q1')).toMatchObject({ code: 'VALID' });
    expect(cache.size).toBe(1);
    now += 60_001;
    expect(cache.get('kw_pat_c', 'q1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps answers per question: another question about a cached token is not an answer', () => {
    const cache = createAnswerCache();
    cache.fill('kw_pat_a', '[["scans:read"],null,null,null]', valid(token('tok_a')));
    expect(cache.get('kw_pat_a', '[["scans:read"],null,null,null]')).toMatchObject({ code: 'VALID' });
    expect(cache.get('kw_pat_a', '[["scans:write"],null,null,null]')).toBeUndefined();
    expect(cache.get('kw_pat_b', '[["scans:read"],null,null,null]')).toBeUndefined();
  });

  it('stays within its bound of tokens, and of questions per token', () => {
    const cache = createAnswerCache({ max: 2 });
    for (const id of ['tok_1', 'tok_2', 'tok_3']) cache.fill(id, 'q', valid(token(id)));
    expect(cache.size).toBe(2);
    expect(cache.get('tok_1', 'q')).toBeUndefined();
    for (let i = 0; i <= QUESTIONS_PER_TOKEN; i += 1) cache.fill('tok_2', `ip ${i}`, valid(token('tok_2')));
    expect(cache.get('tok_2', 'ip 0')).toBeUndefined();
    expect(cache.get('tok_2', `ip ${QUESTIONS_PER_TOKEN}`)).toMatchObject({ code: 'VALID' });
    expect(cache.size).toBe(1 + QUESTIONS_PER_TOKEN);
  });
});
