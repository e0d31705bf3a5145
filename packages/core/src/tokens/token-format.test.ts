import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BASE62_ALPHABET, encodeBase62Fixed } from '../encoding/base62.ts';
import {
  DEFAULT_TOKEN_PREFIXES,
  findTokens,
  generateToken,
  isValidTokenPrefix,
  isWellFormedToken,
  parseToken,
  tokenHint,
  tokenPattern,
  tokenPatternSource,
} from './token-format.ts';

const segment = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength });
const validPrefix = fc
  .tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'), segment(15), fc.array(segment(16), { maxLength: 3 }))
  .map(([first, rest, more]) => [first + rest.slice(1), ...more].join('_'));
const base62Char = fc.constantFrom(...BASE62_ALPHABET);

describe('generateToken', () => {
  it('produces prefix, underscore, 43 body characters and a 6-character CRC32 checksum', () => {
    const token = generateToken('kw_pat');
    expect(token).toMatch(/^kw_pat_[0-9A-Za-z]{49}$/);
    const head = token.slice(0, -6);
    expect(token.slice(-6)).toBe(encodeBase62Fixed(crc32(head), 6));
  });

  it('never repeats a token', () => {
    const tokens = new Set(Array.from({ length: 500 }, () => generateToken('kw_pat')));
    expect(tokens.size).toBe(500);
  });

  it('refuses an invalid prefix', () => {
    for (const prefix of ['', 'KW_pat', 'kw-pat', '_kw', 'kw_', '1kw', 'a_b_c_d_e']) {
      expect(() => generateToken(prefix)).toThrow(TypeError);
    }
  });
});

describe('isValidTokenPrefix', () => {
  it('accepts lowercase prefixes with up to three instance segments', () => {
    for (const prefix of ['kw_pat', 'kw_acme_pat', 'kw', 'a_b_c_d', 'k0123456789abcde_x']) {
      expect(isValidTokenPrefix(prefix)).toBe(true);
    }
  });

  it('rejects uppercase, punctuation, empty segments and too many segments', () => {
    for (const prefix of ['Kw_pat', 'kw__pat', 'kw_pat_', 'kw.pat', 'a_b_c_d_e', 'abcdefghijklmnopq', '0kw']) {
      expect(isValidTokenPrefix(prefix)).toBe(false);
    }
  });
});

describe('parseToken', () => {
  it('round-trips every generated token with its kind and parts', () => {
    fc.assert(
      fc.property(validPrefix, validPrefix, fc.boolean(), (personal, client, asClient) => {
        fc.pre(personal !== client);
        const prefixes = { personal, client };
        const token = generateToken(asClient ? client : personal);
        const parsed = parseToken(token, prefixes);
        expect(parsed).not.toBeNull();
        expect(parsed!.kind).toBe(asClient ? 'client' : 'personal');
        expect(`${parsed!.prefix}_${parsed!.body}${parsed!.checksum}`).toBe(token);
        expect(parsed!.body).toHaveLength(43);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects any single-character substitution anywhere in the token', () => {
    fc.assert(
      fc.property(fc.nat(), base62Char, fc.constantFrom('kw_pat', 'kw_svc', 'kw_acme_pat'), (at, char, prefix) => {
        const token = generateToken(prefix);
        const position = at % token.length;
        fc.pre(token[position] !== char);
        const altered = token.slice(0, position) + char + token.slice(position + 1);
        expect(parseToken(altered, { personal: 'kw_pat', client: prefix === 'kw_pat' ? 'kw_svc' : prefix })).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every possible single substitution of one token, exhaustively', () => {
    const token = generateToken('kw_pat');
    let accepted = 0;
    for (let position = 0; position < token.length; position += 1) {
      for (const char of BASE62_ALPHABET) {
        if (char === token[position]) continue;
        const altered = token.slice(0, position) + char + token.slice(position + 1);
        if (parseToken(altered, DEFAULT_TOKEN_PREFIXES)) accepted += 1;
      }
    }
    expect(accepted).toBe(0);
  });

  it('rejects a token whose prefix is configured for neither kind', () => {
    fc.assert(
      fc.property(fc.boolean(), (personalOnly) => {
        const token = generateToken(personalOnly ? 'kw_pat' : 'kw_svc');
        const prefixes = personalOnly
          ? { personal: 'kw_other', client: 'kw_svc' }
          : { personal: 'kw_pat', client: 'kw_other' };
        expect(parseToken(token, prefixes)).toBeNull();
      }),
      { numRuns: 20 },
    );
  });

  it('rejects a personal token presented as a different deployment instance', () => {
    const token = generateToken('kw_acme_pat');
    expect(parseToken(token, { personal: 'kw_pat', client: 'kw_svc' })).toBeNull();
    expect(parseToken(token, { personal: 'kw_acme_pat', client: 'kw_acme_svc' })?.kind).toBe('personal');
  });

  it('rejects malformed input without throwing', () => {
    const token = generateToken('kw_pat');
    const cases = [
      '',
      'kw_pat_',
      token.slice(0, -1),
      `${token}a`,
      ` ${token}`,
      `${token} `,
      `${token}\n`,
      token.replace('kw_pat_', 'kw_pat__'),
      token.replace('kw_pat_', 'kw_pat-'),
      `${token.slice(0, 20)}-${token.slice(21)}`,
      token.toUpperCase(),
      'kw_pat_' + 'a'.repeat(300),
      'x'.repeat(10_000),
    ];
    for (const value of cases) expect(parseToken(value, DEFAULT_TOKEN_PREFIXES)).toBeNull();
    expect(parseToken(undefined as unknown as string, DEFAULT_TOKEN_PREFIXES)).toBeNull();
  });

  it('rejects arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (value) => {
        expect(parseToken(value, DEFAULT_TOKEN_PREFIXES)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });
});

describe('isWellFormedToken', () => {
  // The definition, spelled the slow and obvious way: prefix, "_", 43 base62
  // characters, and the CRC32 of everything before the checksum in 6 base62 digits.
  const reference = (token: string): boolean => {
    const match = /^(kw_pat|kw_svc)_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/.exec(token);
    return match !== null && encodeBase62Fixed(crc32(`${match[1]}_${match[2]}`), 6) === match[3];
  };

  it('agrees with the definition on tokens with any character changed, dropped or added, ASCII or not', () => {
    const anyChar = fc.oneof(base62Char, fc.constantFrom('_', '-', ' ', '\u00e9', '\u0100', '\u{1F600}', '\0', 'z', '0'));
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), anyChar, fc.constantFrom('replace', 'insert', 'delete', 'keep'), (personal, at, char, edit) => {
        const token = generateToken(personal ? 'kw_pat' : 'kw_svc');
        const position = at % token.length;
        const edited =
          edit === 'replace' ? token.slice(0, position) + char + token.slice(position + 1)
          : edit === 'insert' ? token.slice(0, position) + char + token.slice(position)
          : edit === 'delete' ? token.slice(0, position) + token.slice(position + 1)
          : token;
        expect(isWellFormedToken(edited, DEFAULT_TOKEN_PREFIXES)).toBe(reference(edited));
        expect(parseToken(edited, DEFAULT_TOKEN_PREFIXES) !== null).toBe(reference(edited));
      }),
      { numRuns: 2_000 },
    );
  });

  it('accepts every generated token, for any valid prefix (the checksum agrees with zlib\'s CRC32)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9]{0,15}(_[a-z0-9]{1,16}){0,3}$/), (prefix) => {
        const prefixes = { personal: prefix, client: 'kw_other' };
        expect(isWellFormedToken(generateToken(prefix), prefixes)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses tokens under a configured prefix that is not a valid one', () => {
    const token = generateToken('kw_pat');
    const invalid = { personal: 'KW_pat', client: 'kw_svc' };
    expect(isWellFormedToken(`KW_pat${token.slice(6, -6)}${encodeBase62Fixed(crc32(`KW_pat${token.slice(6, -6)}`), 6)}`, invalid)).toBe(false);
  });

  it('accepts tokens whose checksum starts with zero digits', () => {
    // About one token in 62 has a leading "0" in its checksum; 5,000 give dozens.
    const padded = Array.from({ length: 5_000 }, () => generateToken('kw_pat')).filter((token) => token.at(-6) === '0');
    expect(padded.length).toBeGreaterThan(10);
    for (const token of padded) expect(isWellFormedToken(token, DEFAULT_TOKEN_PREFIXES)).toBe(true);
  });
});

describe('tokenHint', () => {
  it('keeps the prefix and the last four characters only', () => {
    const token = generateToken('kw_acme_pat');
    expect(tokenHint(token)).toBe(`kw_acme_pat_…${token.slice(-4)}`);
    expect(tokenHint(token)).not.toContain(token.slice(12, 20));
  });
});

describe('tokenPattern', () => {
  it('publishes a word-bounded pattern for both prefixes', () => {
    expect(tokenPatternSource(DEFAULT_TOKEN_PREFIXES)).toBe('\\b(?:kw_pat|kw_svc)_[0-9A-Za-z]{49}\\b');
    expect(tokenPattern(DEFAULT_TOKEN_PREFIXES).flags).toContain('g');
  });

  it('matches generated tokens inside text and not longer runs', () => {
    const token = generateToken('kw_svc');
    expect(`Authorization: Bearer ${token}\n`.match(tokenPattern(DEFAULT_TOKEN_PREFIXES))).toEqual([token]);
    expect(`${token}x`.match(tokenPattern(DEFAULT_TOKEN_PREFIXES))).toBeNull();
    expect(`x${token}`.match(tokenPattern(DEFAULT_TOKEN_PREFIXES))).toBeNull();
  });

  it('refuses prefixes that are not valid', () => {
    expect(() => tokenPatternSource({ personal: 'kw.pat', client: 'kw_svc' })).toThrow(TypeError);
  });
});

describe('findTokens', () => {
  it('finds every real token in a text and skips look-alikes with a bad checksum', () => {
    const personal = generateToken('kw_pat');
    const client = generateToken('kw_svc');
    const lookAlike = `kw_pat_${'A'.repeat(49)}`;
    const text = `first=${personal} second="${client}" fake=${lookAlike} again:${personal}`;
    expect(findTokens(text, DEFAULT_TOKEN_PREFIXES)).toEqual([personal, client, personal]);
  });

  it('finds nothing in text without tokens', () => {
    expect(findTokens('GET /api/v1/tokens 200 kw_pat_short', DEFAULT_TOKEN_PREFIXES)).toEqual([]);
  });
});
