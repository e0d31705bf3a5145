// The verifier's cache of server answers, with an index so an invalidation
// event drops every answer about a token, an owner or at once.
import { LRUCache } from 'lru-cache';
import type { VerifyAnswer } from './verify-answer.ts';

export interface AnswerCacheOptions {
  /** Most answers kept; default 10,000. */
  max?: number;
  /** How long a VALID answer is trusted without news from the event stream; default 60 s. */
  ttlMs?: number;
  /** How long a refusal that may change (NOT_FOUND, DISABLED, INSUFFICIENT_SCOPE…) is kept; default 5 s. */
  negativeTtlMs?: number;
}

export interface AnswerCache {
  get(key: string): VerifyAnswer | undefined;
  /** Keeps the answer if it is safe to reuse, for as long as it is safe. */
  fill(key: string, answer: VerifyAnswer): void;
  dropTokens(tokenIds: readonly string[]): void;
  dropOwner(type: 'user' | 'client', id: string): void;
  clear(): void;
  readonly size: number;
}

export const DEFAULT_CACHE_MAX = 10_000;
export const DEFAULT_TTL_MS = 60_000;
export const DEFAULT_NEGATIVE_TTL_MS = 5_000;

/**
 * How long an answer may be reused, or 0 for never. Answers that depend on
 * counters (a quota's `remaining`, a rate limit's window) are asked afresh
 * every time: a cached VALID would let a token spend nothing and exceed its
 * limit. A refusal carries no token id, so no event can reach it: it is kept
 * only briefly, except REVOKED, which is for ever.
 */
export function reuseMsFor(answer: VerifyAnswer, ttlMs: number, negativeTtlMs: number, nowMs: number): number {
  if (answer.rateLimit !== undefined || answer.remaining !== undefined) return 0;
  switch (answer.code) {
    case 'VALID': {
      const expiresAt = answer.token?.expiresAt;
      if (!expiresAt) return ttlMs;
      return Math.max(0, Math.min(ttlMs, Date.parse(expiresAt) - nowMs));
    }
    case 'REVOKED':
      return ttlMs;
    case 'RATE_LIMITED':
    case 'USAGE_EXCEEDED':
      return 0;
    default:
      return negativeTtlMs;
  }
}

export function createAnswerCache(options: AnswerCacheOptions = {}, now: () => number = Date.now): AnswerCache {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const negativeTtlMs = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS;
  // Index: token id, `user:<id>` or `client:<id>` → cache keys holding an answer about it.
  const index = new Map<string, Set<string>>();

  function unindex(key: string, answer: VerifyAnswer): void {
    const token = answer.token;
    if (!token) return;
    for (const name of [token.id, `${token.owner.type}:${token.owner.id}`]) {
      const keys = index.get(name);
      keys?.delete(key);
      if (keys?.size === 0) index.delete(name);
    }
  }

  const cache = new LRUCache<string, VerifyAnswer>({
    max: options.max ?? DEFAULT_CACHE_MAX,
    ttlAutopurge: false,
    // Ages by the same clock as the expiry cap, read on every get (a clock read is cheap next to a round trip).
    perf: { now },
    ttlResolution: 0,
    dispose: (answer, key) => unindex(key, answer),
  });

  function dropIndexed(name: string): void {
    const keys = index.get(name);
    if (!keys) return;
    for (const key of [...keys]) cache.delete(key);
    index.delete(name);
  }

  return {
    get: (key) => cache.get(key),
    fill(key, answer) {
      const reuseMs = reuseMsFor(answer, ttlMs, negativeTtlMs, now());
      if (reuseMs <= 0) return;
      cache.set(key, answer, { ttl: reuseMs });
      const token = answer.token;
      if (!token) return;
      for (const name of [token.id, `${token.owner.type}:${token.owner.id}`]) {
        let keys = index.get(name);
        if (!keys) index.set(name, (keys = new Set()));
        keys.add(key);
      }
    },
    dropTokens(tokenIds) {
      for (const id of tokenIds) dropIndexed(id);
    },
    dropOwner(type, id) {
      dropIndexed(`${type}:${id}`);
    },
    clear() {
      cache.clear();
      index.clear();
    },
    get size() {
      return cache.size;
    },
  };
}
