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

export type CacheLookup = { kind: 'hit'; compiled: CompiledToken } | { kind: 'negative' } | { kind: 'miss' };

const MISS: CacheLookup = { kind: 'miss' };
/**
 * One hit in this many moves its entry to the recent end of the LRU list.
 * Moving it relinks the entry and its two neighbours in the cache's arrays of
 * 100,000 slots: four more random memory reads and writes on a hit, for an
 * order that matters only when the cache is full. An entry used often is still
 * moved often; one used rarely ages as if unused, which it nearly is. Every
 * entry is read afresh after the TTL anyway.
 */
const PROMOTE_EVERY = 8;
const NEGATIVE: CacheLookup = { kind: 'negative' };

export class TokenCache {
  private readonly entries: LRUCache<string, CompiledToken>;
  private readonly unknown: LRUCache<string, number>;
  /**
   * Tokens named by a tokens.changed event within the last TTL, with the
   * generation that event started: an entry of such a token read before it is
   * stale, and its next lookup drops it. Entries are checked when they are
   * hit, so the cache keeps no index from token id to entry (a map of every
   * cached token, ~30 bytes each); this map holds only recent changes, oldest
   * first, and is empty most of the time.
   */
  private readonly changed = new Map<string, { generation: number; atMs: number }>();
  private readonly options: TokenCacheOptions;
  /** Bumped by every invalidation; a fill that started under an older generation is dropped. */
  private currentGeneration = 0;
  private hits = 0;
  /** The time a lookup was given, for the LRU's staleness check while it runs (see the constructor). */
  private lookupNow: number | undefined;

  constructor(options: TokenCacheOptions) {
    this.options = options;
    this.entries = new LRUCache<string, CompiledToken>({
      max: options.max,
      // lru-cache keeps each entry's fill time in two preallocated number arrays: no
      // wrapper object and boxed time per entry (~40 bytes a cached token). It calls an
      // entry stale once *more* than `ttl` has passed, and ours is stale at ttlMs: the
      // clocks count whole milliseconds, so one less. Read on every lookup (no timer-cached time):
      // during a lookup, the reading the verification took already; a clock read less a lookup.
      ttl: Math.max(1, options.ttlMs - 1),
      ttlResolution: 0,
      perf: { now: () => this.lookupNow ?? options.now() },
    });
    this.unknown = new LRUCache<string, number>({ max: options.negativeMax });
  }

  get generation(): number {
    return this.currentGeneration;
  }

  get size(): number {
    return this.entries.size;
  }

  /** `now` (ms) is the caller's clock reading, when it has one (the negative cache's; the LRU reads the same clock). */
  lookup(key: string, now: number = this.options.now()): CacheLookup {
    // An expired entry is not returned (a get also drops it; a later fill replaces it).
    this.lookupNow = now;
    const compiled = ++this.hits % PROMOTE_EVERY === 0 ? this.entries.get(key) : this.entries.peek(key);
    this.lookupNow = undefined;
    if (compiled) {
      if (this.changed.size === 0 || !this.changedSinceRead(compiled, now)) return { kind: 'hit', compiled };
      this.entries.delete(key);
    }
    const unknownAt = this.unknown.get(key);
    if (unknownAt !== undefined) {
      if (now - unknownAt < this.options.negativeTtlMs) return NEGATIVE;
      this.unknown.delete(key);
    }
    return MISS;
  }

  /**
   * How much longer the entry under `key` is trusted without an event (ms; 0
   * when there is none): it is read afresh from storage after that.
   */
  remainingMs(key: string, now: number): number {
    this.lookupNow = now;
    const remaining = this.entries.getRemainingTTL(key);
    this.lookupNow = undefined;
    return Number.isFinite(remaining) ? Math.max(0, remaining) : 0;
  }

  /**
   * Stores a lookup's result unless an invalidation arrived since it began
   * (`generation` is what {@link generation} was then): a slow read must not
   * put a revoked token back.
   */
  fill(key: string, compiled: CompiledToken | null, generation: number): boolean {
    if (generation !== this.currentGeneration) return false;
    if (compiled === null) {
      this.unknown.set(key, this.options.now());
      return true;
    }
    compiled.cachedAtGeneration = generation;
    this.entries.set(key, compiled);
    return true;
  }

  /** Drops everything an event may have changed. */
  invalidate(event: KeywardEvent): void {
    this.currentGeneration++;
    switch (event.type) {
      case 'tokens.changed': {
        // Every entry of these tokens in the cache now was read before this generation.
        const atMs = this.options.now();
        // Trimmed here as well as on hits, so a verifier that answers nothing
        // while tokens change does not keep every change it ever saw.
        this.forgetOldChanges(atMs);
        for (const id of event.tokenIds) {
          // Deleted first, so the map stays in order of change (forgetOldChanges reads the oldest).
          this.changed.delete(id);
          this.changed.set(id, { generation: this.currentGeneration, atMs });
        }
        // A new token's digest cannot be in the negative cache unless someone
        // guessed it; dropping the unknowns anyway costs little and is exact.
        this.unknown.clear();
        return;
      }
      case 'member.changed':
        this.dropWhere((c) => c.organizationId === event.organizationId && c.owner.type === 'user' && c.owner.id === event.userId);
        return;
      case 'client.changed':
        this.dropWhere((c) => c.organizationId === event.organizationId && c.owner.type === 'client' && c.owner.id === event.clientId);
        return;
      case 'organization.changed':
        this.dropWhere((c) => c.organizationId === event.organizationId);
        return;
    }
  }

  /** Drops everything: the keyring changed, or events may have been missed (a bus gap). */
  clear(): void {
    this.currentGeneration++;
    this.entries.clear();
    this.unknown.clear();
    this.changed.clear();
  }

  /** Whether a tokens.changed event named this entry's token after the entry was read. */
  private changedSinceRead(compiled: CompiledToken, now: number): boolean {
    this.forgetOldChanges(now);
    const change = this.changed.get(compiled.id);
    return change !== undefined && compiled.cachedAtGeneration < change.generation;
  }

  /**
   * A change older than the TTL concerns no entry any more: every entry read
   * before it has expired (an entry is read no later than the change it
   * predates, and lives ttlMs).
   */
  private forgetOldChanges(now: number): void {
    for (const [id, change] of this.changed) {
      if (now - change.atMs < this.options.ttlMs) return;
      this.changed.delete(id);
    }
  }

  // Member, client and organization changes are rare; a scan keeps the
  // common path free of extra indexes.
  private dropWhere(matches: (compiled: CompiledToken) => boolean): void {
    for (const [key, compiled] of this.entries.entries()) if (matches(compiled)) this.entries.delete(key);
  }
}
