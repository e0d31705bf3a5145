// The verifier's cache of server answers, with an index so an invalidation
// event drops every answer about a token, an owner or at once.
//
// Answers are kept per presented token (the LRU's key), then per question: a
// hit looks up the token string as the request carried it, with no key to
// build, which is most of what a hit costs.
import { LRUCache } from 'lru-cache';
import type { VerifyAnswer } from './verify-answer.ts';

export interface AnswerCacheOptions {
  /** Most presented tokens kept, each with up to 32 distinct questions; default 10,000. */
  max?: number;
  /** How long a VALID answer is trusted without news from the event stream; default 60 s. */
  ttlMs?: number;
  /** How long a refusal that may change (NOT_FOUND, DISABLED, INSUFFICIENT_SCOPE…) is kept; default 5 s. */
  negativeTtlMs?: number;
}

export interface AnswerCache {
  /** The answer kept for this token and question (see the verifier's question key), if still fresh. */
  get(presented: string, question: string): VerifyAnswer | undefined;
  /** Keeps the answer if it is safe to reuse, for as long as it is safe. */
  fill(presented: string, question: string, answer: VerifyAnswer): void;
  dropTokens(tokenIds: readonly string[]): void;
  dropOwner(type: 'user' | 'client', id: string): void;
  clear(): void;
  /** Answers kept, all tokens together. */
  readonly size: number;
}

export const DEFAULT_CACHE_MAX = 10_000;
export const DEFAULT_TTL_MS = 60_000;
export const DEFAULT_NEGATIVE_TTL_MS = 5_000;
/** Distinct questions kept per token (a route asks one; client addresses make more): the oldest goes first. */
export const QUESTIONS_PER_TOKEN = 32;

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

interface Kept {
  answer: VerifyAnswer;
  /** By the cache's clock. */
  until: number;
}

/** What is kept about one presented token: its answers by question, and whom they are about. */
interface Bucket {
  answers: Map<string, Kept>;
  /** Index names (`<tokenId>`, `<ownerType>:<ownerId>`) of the token, once an answer named it. */
  names: string[] | undefined;
}

export function createAnswerCache(options: AnswerCacheOptions = {}, now: () => number = Date.now): AnswerCache {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const negativeTtlMs = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS;
  // Index: token id, `user:<id>` or `client:<id>` → presented tokens holding answers about it.
  const index = new Map<string, Set<string>>();
  let size = 0;

  function unindex(presented: string, bucket: Bucket): void {
    size -= bucket.answers.size;
    for (const name of bucket.names ?? []) {
      const keys = index.get(name);
      keys?.delete(presented);
      if (keys?.size === 0) index.delete(name);
    }
  }

  const buckets = new LRUCache<string, Bucket>({
    max: options.max ?? DEFAULT_CACHE_MAX,
    dispose: (bucket, presented) => unindex(presented, bucket),
  });

  function dropIndexed(name: string): void {
    const keys = index.get(name);
    if (!keys) return;
    for (const presented of [...keys]) buckets.delete(presented);
    index.delete(name);
  }

  return {
    get(presented, question) {
      const bucket = buckets.get(presented);
      const kept = bucket?.answers.get(question);
      if (!kept) return undefined;
      if (now() < kept.until) return kept.answer;
      bucket!.answers.delete(question);
      size--;
      return undefined;
    },
    fill(presented, question, answer) {
      const nowMs = now();
      const reuseMs = reuseMsFor(answer, ttlMs, negativeTtlMs, nowMs);
      if (reuseMs <= 0) return;
      let bucket = buckets.get(presented);
      if (!bucket) {
        bucket = { answers: new Map(), names: undefined };
        buckets.set(presented, bucket);
      }
      if (!bucket.answers.has(question)) {
        if (bucket.answers.size >= QUESTIONS_PER_TOKEN) {
          // Maps keep insertion order: the first key is the oldest question.
          bucket.answers.delete(bucket.answers.keys().next().value as string);
          size--;
        }
        size++;
      }
      bucket.answers.set(question, { answer, until: nowMs + reuseMs });
      const token = answer.token;
      if (!token || bucket.names) return;
      bucket.names = [token.id, `${token.owner.type}:${token.owner.id}`];
      for (const name of bucket.names) {
        let keys = index.get(name);
        if (!keys) index.set(name, (keys = new Set()));
        keys.add(presented);
      }
    },
    dropTokens(tokenIds) {
      for (const id of tokenIds) dropIndexed(id);
    },
    dropOwner(type, id) {
      dropIndexed(`${type}:${id}`);
    },
    clear() {
      buckets.clear();
      index.clear();
      size = 0;
    },
    get size() {
      return size;
    },
  };
}
