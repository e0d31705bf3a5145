import { DEFAULT_TOKEN_PREFIXES, generateToken } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { tokenCacheKey } from '../verification/verifier.ts';
import { ConnectionCallers } from './connection-callers.ts';

const TOKEN = generateToken(DEFAULT_TOKEN_PREFIXES.client);

describe('ConnectionCallers', () => {
  it('knows nothing of a connection until its token authenticated', () => {
    expect(new ConnectionCallers().recall({}, TOKEN)?.key).toBeUndefined();
  });

  it("gives a remembered token's cache key back for the same bytes on the same connection", () => {
    const callers = new ConnectionCallers();
    const connection = {};
    callers.remember(connection, TOKEN);
    expect(callers.recall(connection, TOKEN)?.key).toBe(tokenCacheKey(TOKEN));
    // A copy of the bytes, not the same string object.
    expect(callers.recall(connection, [...TOKEN].join(''))?.key).toBe(tokenCacheKey(TOKEN));
  });

  it('gives nothing for another connection, or another token on the same one', () => {
    const callers = new ConnectionCallers();
    const connection = {};
    callers.remember(connection, TOKEN);
    const changed = `${TOKEN.slice(0, -1)}${TOKEN.endsWith('A') ? 'B' : 'A'}`;
    for (const other of [changed, TOKEN.slice(0, -1), `${TOKEN}A`, generateToken(DEFAULT_TOKEN_PREFIXES.client), '']) expect(callers.recall(connection, other)?.key).toBeUndefined();
    expect(callers.recall({}, TOKEN)?.key).toBeUndefined();
  });

  it('tells apart tokens whose characters only a lossy encoding would confuse', () => {
    const callers = new ConnectionCallers();
    const connection = {};
    callers.remember(connection, 'kw_pat_\u0100');
    // In latin1 both would be the same byte; the comparison is over whole characters.
    expect(callers.recall(connection, 'kw_pat_\u0000')?.key).toBeUndefined();
  });

  it('keeps one token a connection: a new one replaces the last', () => {
    const callers = new ConnectionCallers();
    const connection = {};
    const next = generateToken(DEFAULT_TOKEN_PREFIXES.client);
    callers.remember(connection, TOKEN);
    callers.remember(connection, next);
    expect(callers.recall(connection, TOKEN)?.key).toBeUndefined();
    expect(callers.recall(connection, next)?.key).toBe(tokenCacheKey(next));
  });
});
