import { describe, expect, it } from 'vitest';
import { candidateDigests, newKeyringEntry, parseKeyring } from './keyring.ts';
import { isValidLegacyPrefix, legacyPrefixOf, legacyTokenHint, lookupDigests, overlapsNativePrefix, sha256Digest } from './legacy-token.ts';
import { DEFAULT_TOKEN_PREFIXES, generateToken } from './token-format.ts';

const SECRET = 'a'.repeat(16);

describe('legacy key prefixes', () => {
  it('accepts short names of letters, digits, _ - and .', () => {
    for (const prefix of ['sk_live_', 'acme-', 'pk.', 'x1']) expect(isValidLegacyPrefix(prefix)).toBe(true);
    for (const prefix of ['', 'a', '_sk', 'sk live', 'sk/', 'x'.repeat(33)]) expect(isValidLegacyPrefix(prefix)).toBe(false);
  });

  it("finds the ones that overlap Keyward's own prefixes", () => {
    expect(overlapsNativePrefix('kw_', DEFAULT_TOKEN_PREFIXES)).toBe(true);
    expect(overlapsNativePrefix('kw_pat_old', DEFAULT_TOKEN_PREFIXES)).toBe(true);
    expect(overlapsNativePrefix('kw_svc_', DEFAULT_TOKEN_PREFIXES)).toBe(true);
    expect(overlapsNativePrefix('kw-', DEFAULT_TOKEN_PREFIXES)).toBe(false);
    expect(overlapsNativePrefix('sk_live_', DEFAULT_TOKEN_PREFIXES)).toBe(false);
  });
});

describe('legacyPrefixOf', () => {
  const prefixes = ['sk_', 'sk_live_'];

  it('answers the longest configured prefix a key starts with', () => {
    expect(legacyPrefixOf(`sk_live_${SECRET}`, prefixes)).toBe('sk_live_');
    expect(legacyPrefixOf(`sk_test_${SECRET}`, prefixes)).toBe('sk_');
  });

  it('refuses keys with no configured prefix, too little after it, too long, or with spaces', () => {
    expect(legacyPrefixOf(`pk_${SECRET}`, prefixes)).toBeNull();
    expect(legacyPrefixOf(`sk_live_${'a'.repeat(15)}`, prefixes)).toBeNull();
    expect(legacyPrefixOf(`sk_live_${'a'.repeat(249)}`, prefixes)).toBeNull();
    expect(legacyPrefixOf(`sk_live_${'a'.repeat(248)}`, prefixes)).toBe('sk_live_');
    expect(legacyPrefixOf(`sk_live_${SECRET} x`, prefixes)).toBeNull();
    expect(legacyPrefixOf(`sk_live_${SECRET}`, undefined)).toBeNull();
    expect(legacyPrefixOf(`sk_live_${SECRET}`, [])).toBeNull();
  });
});

describe('lookupDigests', () => {
  const keyring = parseKeyring(`${newKeyringEntry('v2')},${newKeyringEntry('v1')}`);

  it('adds the plain SHA-256 for a legacy key only', () => {
    const legacy = `sk_live_${SECRET}`;
    const hmacs = candidateDigests(keyring, legacy).map((candidate) => candidate.digest);
    expect(lookupDigests(keyring, legacy, ['sk_live_'])).toEqual([...hmacs, sha256Digest(legacy)]);
    const native = generateToken('kw_pat');
    expect(lookupDigests(keyring, native, ['sk_live_'])).toEqual(candidateDigests(keyring, native).map((candidate) => candidate.digest));
  });

  it('hashes like other key services: hex SHA-256 of the whole key', () => {
    expect(sha256Digest('test')).toBe('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
  });

  it('shows the prefix and the last 4 characters as the hint', () => {
    expect(legacyTokenHint('sk_live_', `sk_live_${SECRET}wxyz`)).toBe('sk_live_…wxyz');
    expect(legacyTokenHint('sk_live_')).toBe('sk_live_…');
  });
});
