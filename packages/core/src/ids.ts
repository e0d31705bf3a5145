import { randomBase62 } from './encoding/base62.ts';

export type IdPrefix = 'usr' | 'org' | 'tok' | 'cli' | 'res' | 'evt' | 'ses' | 'inv';

/** A public, typed identifier such as `tok_4fQ…`; ~119 random bits, so ids cannot be guessed. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(20)}`;
}
