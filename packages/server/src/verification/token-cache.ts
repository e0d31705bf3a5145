// The in-process cache of compiled tokens, keyed by a SHA-256 of the presented
// token (never the token itself, so a heap dump holds no secret). Invalidation events drop entries at once; a
// generation counter keeps a lookup that raced an invalidation from putting
// stale data back.
import { LRUCache } from 'lru-cache';
import type { CompiledToken, KeywardEvent } from '@keyward/core';

export interface TokenCacheOptions {
  /** Most compiled tokens kept. */
  max: number;
  /** How long an entry is trusted without an event (bounds staleness if an event is lost). */
  ttlMs: number;
  /** How long an unknown digest is remembered as unknown. */
  negativeTtlMs: number;
  negativeMax: number;
  now: () => number;
}

interface Entry {
  compiled: CompiledToken;
  filledAtMs: number;
}

export type CacheLookup = { kind: 'hit'; compiled: CompiledToken } | { kind: 'negative' } | { kind: 'miss' };

const MISS: CacheLookup = { kind: 'miss' };
const NEGATIVE: CacheLookup = { kind: 'negative' };

export class TokenCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly unknown: LRUCache<string, number>;
  /** Token id → cache key, so a tokens.changed event finds its entry in O(1). */
  private readonly keyOfToken = new Map<string, string>();
  private readonly options: TokenCacheOptions;
  /** Bumped by every invalidation; a fill that started under an older generation is dropped. */
  private currentGeneration = 0;

  constructor(options: TokenCacheOptions) {
    this.options = options;
    this.entries = new LRUCache<string, Entry>({
      max: options.max,
      dispose: (entry, key) => {
        if (this.keyOfToken.get(entry.compiled.record.id) === key) this.keyOfToken.delete(entry.compiled.record.id);
      },
    });
    this.unknown = new LRUCache<string, number>({ max: options.negativeMax });
  }

  get generation(): number {
    return this.currentGeneration;
  }

  get size(): number {
    return this.entries.size;
  }

  /** `now` (ms) is the caller's clock reading, when it has one. */
  lookup(key: string, now: number = this.options.now()): CacheLookup {
    const entry = this.entries.get(key);
    if (entry) {
      if (now - entry.filledAtMs < this.options.ttlMs) return { kind: 'hit', compiled: entry.compiled };
      this.entries.delete(key);
      return MISS;
    }
    const unknownAt = this.unknown.get(key);
    if (unknownAt !== undefined) {
      if (now - unknownAt < this.options.negativeTtlMs) return NEGATIVE;
      this.unknown.delete(key);
    }
    return MISS;
  }

  /**
   * Stores a lookup's result unless an invalidation arrived since it began
   * (`generation` is what {@link generation} was then): a slow read must not
   * put a revoked token back.
   */
  fill(key: string, compiled: CompiledToken | null, generation: number): boolean {
    if (generation !== this.currentGeneration) return false;
    const now = this.options.now();
    if (compiled === null) {
      this.unknown.set(key, now);
      return true;
    }
    this.entries.set(key, { compiled, filledAtMs: now });
    this.keyOfToken.set(compiled.record.id, key);
    return true;
  }

  /** Drops everything an event may have changed. */
  invalidate(event: KeywardEvent): void {
    this.currentGeneration++;
    switch (event.type) {
      case 'tokens.changed':
        for (const id of event.tokenIds) {
          const key = this.keyOfToken.get(id);
          if (key !== undefined) this.entries.delete(key);
        }
        // A new token's digest cannot be in the negative cache unless someone
        // guessed it; dropping the unknowns anyway costs little and is exact.
        this.unknown.clear();
        return;
      case 'member.changed':
        this.dropWhere((c) => c.record.organizationId === event.organizationId && c.userId === event.userId);
        return;
      case 'client.changed':
        this.dropWhere((c) => c.record.organizationId === event.organizationId && c.clientId === event.clientId);
        return;
      case 'organization.changed':
        this.dropWhere((c) => c.record.organizationId === event.organizationId);
        return;
    }
  }

  /** Drops everything: the keyring changed, or events may have been missed (a bus gap). */
  clear(): void {
    this.currentGeneration++;
    this.entries.clear();
    this.unknown.clear();
    this.keyOfToken.clear();
  }

  // Member, client and organization changes are rare; a scan keeps the
  // common path free of extra indexes.
  private dropWhere(matches: (compiled: CompiledToken) => boolean): void {
    for (const [key, entry] of this.entries.entries()) if (matches(entry.compiled)) this.entries.delete(key);
  }
}
