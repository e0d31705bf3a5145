import { describe, expect, it } from 'vitest';
import { newId } from './ids.ts';

describe('newId', () => {
  it('returns the prefix, an underscore and 20 base62 characters', () => {
    expect(newId('tok')).toMatch(/^tok_[0-9A-Za-z]{20}$/);
    expect(newId('org')).toMatch(/^org_[0-9A-Za-z]{20}$/);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId('usr')));
    expect(ids.size).toBe(1000);
  });
});
