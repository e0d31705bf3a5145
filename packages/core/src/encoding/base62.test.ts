import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BASE62_ALPHABET, encodeBase62Fixed, isBase62, randomBase62 } from './base62.ts';

function decode(s: string): number {
  return [...s].reduce((value, char) => value * 62 + BASE62_ALPHABET.indexOf(char), 0);
}

describe('randomBase62', () => {
  it('returns exactly the requested number of base62 characters', () => {
    for (const length of [0, 1, 20, 43, 500]) {
      const value = randomBase62(length);
      expect(value).toHaveLength(length);
      if (length > 0) expect(isBase62(value)).toBe(true);
    }
  });

  it('uses every character of the alphabet at a roughly even rate', () => {
    const sample = randomBase62(62 * 1000);
    const counts = new Map<string, number>();
    for (const char of sample) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Expected 1000 each; sd ≈ 31, so 800..1200 fails only on a broken generator.
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(800);
      expect(count).toBeLessThan(1200);
    }
  });

  it('rejects negative or fractional lengths', () => {
    expect(() => randomBase62(-1)).toThrow(RangeError);
    expect(() => randomBase62(1.5)).toThrow(RangeError);
  });
});

describe('encodeBase62Fixed', () => {
  it('left-pads with zeros to the width', () => {
    expect(encodeBase62Fixed(0, 6)).toBe('000000');
    expect(encodeBase62Fixed(61, 3)).toBe('00z');
    expect(encodeBase62Fixed(62, 3)).toBe('010');
  });

  it('encodes every unsigned 32-bit integer in 6 characters that decode back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (value) => {
        const encoded = encodeBase62Fixed(value, 6);
        expect(encoded).toHaveLength(6);
        expect(decode(encoded)).toBe(value);
      }),
    );
    expect(encodeBase62Fixed(0xffffffff, 6)).toBe('4gfFC3');
  });

  it('refuses a value that does not fit the width', () => {
    expect(() => encodeBase62Fixed(62 ** 2, 2)).toThrow(RangeError);
    expect(() => encodeBase62Fixed(-1, 6)).toThrow(RangeError);
  });
});

describe('isBase62', () => {
  it('accepts only non-empty strings of 0-9A-Za-z', () => {
    expect(isBase62(BASE62_ALPHABET)).toBe(true);
    for (const value of ['', 'abc_def', 'abc-def', 'a b', 'é', 'abc\n']) expect(isBase62(value)).toBe(false);
  });
});
