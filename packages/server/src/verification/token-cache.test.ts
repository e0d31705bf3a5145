import type { CompiledToken } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { TokenCache } from './token-cache.ts';

const START = Date.parse('2026-12-01T00:00:00Z');

/** Only what the cache reads of a compiled token. */
function compiled(id: string, facts: { organizationId?: string; userId?: string | null; clientId?: string | null } = {}): CompiledToken {
  const userId = facts.userId === undefined ? 'usr_1' : facts.userId;
  const owner = userId !== null ? { type: 'user', id: userId } : { type: 'client', id: facts.clientId };
  return { id, organizationId: facts.organizationId ?? 'org_1', owner } as unknown as CompiledToken;
}

function cacheWithClock(options: { max?: number; ttlMs?: number; negativeTtlMs?: number } = {}) {
  const clock = { now: START };
  const cache = new TokenCache({ max: options.max ?? 100, ttlMs: options.ttlMs ?? 60_000, negativeTtlMs: options.negativeTtlMs ?? 5_000, negativeMax: 100, now: () => clock.now });
  return { cache, clock };
}

describe('TokenCache', () => {
  it('answers a filled token until its TTL has passed, then forgets it', () => {
    const { cache, clock } = cacheWithClock({ ttlMs: 60_000 });
    const token = compiled('tok_1');
    cache.fill('key-1', token, cache.generation);
    clock.now = START + 59_999;
    expect(cache.lookup('key-1', clock.now)).toEqual({ kind: 'hit', compiled: token });
    clock.now = START + 60_000;
    expect(cache.lookup('key-1', clock.now)).toEqual({ kind: 'miss' });
    // The next fill replaces the expired entry in place.
    cache.fill('key-1', token, cache.generation);
    expect(cache.size).toBe(1);
  });

  it("judges an entry's age by the time the lookup is given, the verification's one clock reading", () => {
    const { cache, clock } = cacheWithClock();
    const token = compiled('tok_1');
    cache.fill('key-1', token, cache.generation);
    clock.now = START + 70_000;
    expect(cache.lookup('key-1', START + 59_999)).toEqual({ kind: 'hit', compiled: token });
    clock.now = START;
    expect(cache.lookup('key-1', START + 60_000)).toEqual({ kind: 'miss' });
  });

  it('answers every hit, whether or not the hit moves its entry to the recent end', () => {
    const { cache } = cacheWithClock({});
    const token = compiled('tok_1');
    cache.fill('key-1', token, cache.generation);
    for (let i = 0; i < 20; i += 1) expect(cache.lookup('key-1')).toEqual({ kind: 'hit', compiled: token });
  });

  it('keeps an entry used often over ones filled after it when full, and evicts the least recently moved', () => {
    const { cache } = cacheWithClock({ max: 3 });
    const often = compiled('tok_often');
    cache.fill('often', often, cache.generation);
    cache.fill('a', compiled('tok_a'), cache.generation);
    cache.fill('b', compiled('tok_b'), cache.generation);
    // Eight hits include one that moves it to the recent end.
    for (let i = 0; i < 8; i += 1) cache.lookup('often');
    cache.fill('c', compiled('tok_c'), cache.generation);
    expect(cache.lookup('often')).toEqual({ kind: 'hit', compiled: often });
    expect(cache.lookup('a')).toEqual({ kind: 'miss' });
  });

  it('remembers an unknown key for the negative TTL only', () => {
    const { cache, clock } = cacheWithClock({ negativeTtlMs: 5_000 });
    cache.fill('unknown', null, cache.generation);
    clock.now = START + 4_999;
    expect(cache.lookup('unknown', clock.now)).toEqual({ kind: 'negative' });
    clock.now = START + 5_000;
    expect(cache.lookup('unknown', clock.now)).toEqual({ kind: 'miss' });
  });

  it('drops a token named by a tokens.changed event, and no other', () => {
    const { cache } = cacheWithClock();
    cache.fill('key-1', compiled('tok_1'), cache.generation);
    cache.fill('key-2', compiled('tok_2'), cache.generation);
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1'] });
    expect(cache.lookup('key-1').kind).toBe('miss');
    expect(cache.lookup('key-2').kind).toBe('hit');
  });

  it('answers a changed token read afresh after the change, and refuses every entry read before it, whenever it is looked up', () => {
    const { cache, clock } = cacheWithClock({ ttlMs: 60_000 });
    cache.fill('key-1', compiled('tok_1'), cache.generation);
    cache.fill('key-2', compiled('tok_2'), cache.generation);
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1', 'tok_2'] });
    // Read afresh after the change: answered.
    const fresh = compiled('tok_1');
    cache.fill('key-1', fresh, cache.generation);
    expect(cache.lookup('key-1', clock.now)).toEqual({ kind: 'hit', compiled: fresh });
    // Not looked up since the change, 59 s later: still refused.
    clock.now = START + 59_000;
    expect(cache.lookup('key-2', clock.now).kind).toBe('miss');
  });

  it('refuses an entry read between two changes of its token', () => {
    const { cache } = cacheWithClock();
    cache.fill('key-1', compiled('tok_1'), cache.generation);
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1'] });
    cache.fill('key-1', compiled('tok_1'), cache.generation);
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1'] });
    expect(cache.lookup('key-1').kind).toBe('miss');
  });

  it('keeps answering other tokens while a change is remembered, and after it is forgotten', () => {
    const { cache, clock } = cacheWithClock({ ttlMs: 60_000 });
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_gone'] });
    const other = compiled('tok_2');
    cache.fill('key-2', other, cache.generation);
    expect(cache.lookup('key-2', clock.now)).toEqual({ kind: 'hit', compiled: other });
    // The change is older than the TTL: forgotten, and the entry filled after it is still answered until its own TTL.
    clock.now = START + 60_000;
    const later = compiled('tok_3');
    cache.fill('key-3', later, cache.generation);
    expect(cache.lookup('key-3', clock.now)).toEqual({ kind: 'hit', compiled: later });
  });

  it('forgets a change once it is older than the TTL, even when nothing was looked up since', () => {
    const { cache, clock } = cacheWithClock({ ttlMs: 60_000 });
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1', 'tok_2'] });
    clock.now = START + 60_000;
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_3'] });
    const remembered = (cache as unknown as { changed: Map<string, unknown> }).changed;
    expect([...remembered.keys()]).toEqual(['tok_3']);
  });

  it("drops a member's, a client's and an organization's tokens on their events", () => {
    const { cache } = cacheWithClock();
    cache.fill('alice', compiled('tok_a', { userId: 'usr_alice' }), cache.generation);
    cache.fill('bob', compiled('tok_b', { userId: 'usr_bob' }), cache.generation);
    cache.fill('robot', compiled('tok_r', { userId: null, clientId: 'cli_robot' }), cache.generation);
    cache.fill('other-org', compiled('tok_o', { organizationId: 'org_2', userId: 'usr_alice' }), cache.generation);
    cache.invalidate({ type: 'member.changed', organizationId: 'org_1', userId: 'usr_alice' });
    expect(['alice', 'bob', 'robot', 'other-org'].map((key) => cache.lookup(key).kind)).toEqual(['miss', 'hit', 'hit', 'hit']);
    cache.invalidate({ type: 'client.changed', organizationId: 'org_1', clientId: 'cli_robot' });
    expect(cache.lookup('robot').kind).toBe('miss');
    cache.invalidate({ type: 'organization.changed', organizationId: 'org_1' });
    expect(['bob', 'other-org'].map((key) => cache.lookup(key).kind)).toEqual(['miss', 'hit']);
  });

  it('refuses a fill that began before an invalidation (a lookup that raced a revoke)', () => {
    const { cache } = cacheWithClock();
    const generation = cache.generation;
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_1'] });
    expect(cache.fill('key-1', compiled('tok_1'), generation)).toBe(false);
    expect(cache.lookup('key-1').kind).toBe('miss');
  });

  it('finds a token by id after the entry it replaced was evicted', () => {
    const { cache } = cacheWithClock({ max: 2 });
    cache.fill('key-1', compiled('tok_1'), cache.generation);
    cache.fill('key-2', compiled('tok_2'), cache.generation);
    cache.fill('key-3', compiled('tok_3'), cache.generation); // evicts key-1
    expect(cache.size).toBe(2);
    cache.invalidate({ type: 'tokens.changed', organizationId: 'org_1', tokenIds: ['tok_3'] });
    expect(cache.lookup('key-3').kind).toBe('miss');
    expect(cache.lookup('key-2').kind).toBe('hit');
  });
});
