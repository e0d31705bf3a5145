import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KeyringError,
  candidateDigests,
  digestsEqual,
  hashToken,
  newKeyringEntry,
  nextKeyringVersion,
  parseKeyring,
} from './keyring.ts';
import { generateToken } from './token-format.ts';

const key = () => randomBytes(32).toString('base64url');

describe('parseKeyring', () => {
  it('makes the first entry current and keeps every version in order', () => {
    const keyring = parseKeyring(`v2:${key()},v1:${key()}`);
    expect(keyring.current.version).toBe('v2');
    expect(keyring.all.map((secret) => secret.version)).toEqual(['v2', 'v1']);
    expect(keyring.current.key.symmetricKeySize).toBe(32);
    expect(keyring.all[0]).toBe(keyring.current);
  });

  it('tolerates spaces around entries', () => {
    expect(parseKeyring(` v1:${key()} , v0:${key()} `).all).toHaveLength(2);
  });

  it('accepts padded base64url and longer keys', () => {
    const padded = randomBytes(64).toString('base64url') + '==';
    expect(parseKeyring(`k1:${padded}`).current.key.symmetricKeySize).toBe(64);
  });

  it.each([
    ['an empty spec', ''],
    ['an empty entry', `v1:${key()},`],
    ['an entry without a version', key()],
    ['an invalid version label', `v-1:${key()}`],
    ['a version label over 16 characters', `v12345678901234567:${key()}`],
    ['a duplicate version', `v1:${key()},v1:${key()}`],
    ['a key shorter than 32 bytes', `v1:${randomBytes(31).toString('base64url')}`],
    ['a key that is not base64url', `v1:${randomBytes(32).toString('base64')}+/!`],
  ])('rejects %s with a KeyringError', (_label, spec) => {
    expect(() => parseKeyring(spec)).toThrow(KeyringError);
  });

  it('never echoes key material in its error messages', () => {
    const secret = randomBytes(20).toString('base64url');
    for (const spec of [`v1:${secret}`, secret, `${secret}:${secret}`, `v1:${key()},v1:${secret}`]) {
      let message = '';
      try {
        parseKeyring(spec);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(secret);
      expect(message).not.toContain('\n');
    }
  });

  it('keeps keys out of JSON and inspection output', () => {
    const encoded = key();
    const keyring = parseKeyring(`v1:${encoded}`);
    expect(JSON.stringify(keyring)).not.toContain(encoded);
    expect(JSON.stringify(keyring)).not.toContain('"key"');
    expect(inspect(keyring, { depth: 5 })).not.toContain('Buffer');
  });
});

describe('newKeyringEntry and nextKeyringVersion', () => {
  it('creates an entry that parses to a fresh 32-byte key', () => {
    const entry = newKeyringEntry('v3');
    expect(entry).toMatch(/^v3:[A-Za-z0-9_-]{43}$/);
    expect(parseKeyring(entry).current.key.symmetricKeySize).toBe(32);
  });

  it('numbers the next version after the highest one', () => {
    expect(nextKeyringVersion(parseKeyring(`v2:${key()},v1:${key()}`))).toBe('v3');
    expect(nextKeyringVersion(parseKeyring(`v1:${key()},v10:${key()}`))).toBe('v11');
    expect(nextKeyringVersion(parseKeyring(`prod:${key()}`))).toBe('v1');
  });

  it('refuses an invalid version label', () => {
    expect(() => newKeyringEntry('v 1')).toThrow(KeyringError);
  });
});

describe('hashToken', () => {
  it('is HMAC-SHA256 under the current key, hex encoded', () => {
    const keyring = parseKeyring(`v2:${key()},v1:${key()}`);
    const token = generateToken('kw_pat');
    const expected = createHmac('sha256', keyring.current.key).update(token).digest('hex');
    expect(hashToken(keyring, token)).toEqual({ version: 'v2', digest: expected });
  });

  it('gives different tokens different digests', () => {
    const keyring = parseKeyring(`v1:${key()}`);
    expect(hashToken(keyring, generateToken('kw_pat')).digest).not.toBe(hashToken(keyring, generateToken('kw_pat')).digest);
  });
});

describe('candidateDigests', () => {
  it('lists one digest per version, current first', () => {
    const keyring = parseKeyring(`v3:${key()},v2:${key()},v1:${key()}`);
    const candidates = candidateDigests(keyring, generateToken('kw_pat'));
    expect(candidates.map((candidate) => candidate.version)).toEqual(['v3', 'v2', 'v1']);
    expect(new Set(candidates.map((candidate) => candidate.digest)).size).toBe(3);
  });

  it('finds a token hashed under an old version after rotation and reports that version', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), (rotations) => {
        let spec = `v1:${key()}`;
        const token = generateToken('kw_pat');
        const stored = hashToken(parseKeyring(spec), token);
        for (let i = 0; i < rotations; i += 1) {
          spec = `${newKeyringEntry(nextKeyringVersion(parseKeyring(spec)))},${spec}`;
        }
        const rotated = parseKeyring(spec);
        expect(rotated.current.version).toBe(`v${rotations + 1}`);
        const hit = candidateDigests(rotated, token).find((candidate) => digestsEqual(candidate.digest, stored.digest));
        expect(hit?.version).toBe('v1');
        expect(hashToken(rotated, token).digest).not.toBe(stored.digest);
      }),
      { numRuns: 20 },
    );
  });

  it('no longer finds tokens of a version that was dropped', () => {
    const old = `v1:${key()}`;
    const current = `v2:${key()}`;
    const token = generateToken('kw_pat');
    const stored = hashToken(parseKeyring(old), token);
    const digests = candidateDigests(parseKeyring(current), token).map((candidate) => candidate.digest);
    expect(digests).not.toContain(stored.digest);
  });
});

describe('digestsEqual', () => {
  it('is true exactly when the strings are equal', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        expect(digestsEqual(a, a)).toBe(true);
        expect(digestsEqual(a, b)).toBe(a === b);
      }),
    );
  });

  it('is false for digests of different lengths', () => {
    expect(digestsEqual('abcd', 'abcde')).toBe(false);
    expect(digestsEqual('', 'a')).toBe(false);
  });
});
