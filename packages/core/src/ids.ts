import { randomBase62 } from './encoding/base62.ts';

// whk: webhook endpoint, wev: webhook event (the outbox), wdl: webhook delivery.
export type IdPrefix = 'usr' | 'org' | 'tok' | 'cli' | 'res' | 'evt' | 'ses' | 'inv' | 'whk' | 'wev' | 'wdl';

/** A public, typed identifier such as `tok_4fQ…`; ~119 random bits, so ids cannot be guessed. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(20)}`;
}
