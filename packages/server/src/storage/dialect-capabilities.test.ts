// Which driver errors mean "the database is unavailable right now" (503, retry)
// rather than "this query is wrong" (500).
import type { RawBuilder } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from './database.ts';
import { dialectCapabilities } from './dialect-capabilities.ts';
import { describeEachDialect } from './test-databases.ts';

const sqliteError = (errcode: number, message: string) => Object.assign(new Error(message), { code: 'ERR_SQLITE_ERROR', errcode });

describe('isUnavailable', () => {
  const sqlite = dialectCapabilities('sqlite');
  const postgres = dialectCapabilities('postgres');

  it.each([
    ['SQLITE_FULL', sqliteError(13, 'database or disk is full')],
    ['SQLITE_IOERR_WRITE', sqliteError(778, 'disk I/O error')],
    ['SQLITE_BUSY', sqliteError(5, 'database is locked')],
    ['SQLITE_LOCKED', sqliteError(6, 'database table is locked')],
    ['SQLITE_READONLY', sqliteError(8, 'attempt to write a readonly database')],
    ['SQLITE_CANTOPEN', sqliteError(14, 'unable to open database file')],
    ['wrapped', new Error('query failed', { cause: sqliteError(13, 'database or disk is full') })],
  ])('holds on SQLite for %s', (_name, error) => {
    expect(sqlite.isUnavailable(error)).toBe(true);
  });

  it.each([
    ['a syntax error', sqliteError(1, 'near "selec": syntax error')],
    ['a unique violation', sqliteError(2067, 'UNIQUE constraint failed')],
    ['a plain error', new TypeError('bug')],
  ])('does not hold on SQLite for %s', (_name, error) => {
    expect(sqlite.isUnavailable(error)).toBe(false);
  });

  it.each([
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['refused on every address', Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], ''), { code: 'ECONNREFUSED' })],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['admin shutdown (57P01)', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
    ['cannot connect now (57P03)', Object.assign(new Error('the database system is starting up'), { code: '57P03' })],
    ['too many connections (53300)', Object.assign(new Error('sorry, too many clients already'), { code: '53300' })],
    ['disk full (53100)', Object.assign(new Error('could not extend file'), { code: '53100' })],
    ['a connection failure (08006)', Object.assign(new Error('connection failure'), { code: '08006' })],
  ])('holds on PostgreSQL for %s', (_name, error) => {
    expect(postgres.isUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', Object.assign(new Error('duplicate key'), { code: '23505' })],
    ['a syntax error', Object.assign(new Error('syntax error'), { code: '42601' })],
    ['a serialization failure', Object.assign(new Error('could not serialize'), { code: '40001' })],
    ['nothing', null],
  ])('does not hold on PostgreSQL for %s', (_name, error) => {
    expect(postgres.isUnavailable(error)).toBe(false);
  });
});

describeEachDialect('jsonArrayRows', (open) => {
  let database: Database;
  beforeEach(async () => {
    database = await open();
  });
  afterEach(async () => {
    await database.close();
  });

  it('reads one JSON parameter as rows, each element as its type, quotes and nulls included', async () => {
    const json = JSON.stringify([
      ['tok_1', '2026-01-05T10:00:00.000Z', 9_007_199_254_740_991],
      ["it's \"quoted\"", '2026-01-05T10:01:00.000Z', null],
    ]);
    const { rows, columns } = database.capabilities.jsonArrayRows(json, ['text', 'timestamp', 'bigint']);
    const [text, instant, count] = columns as [RawBuilder<string>, RawBuilder<Date | string>, RawBuilder<number | string | null>];
    const read = await database.db
      .selectFrom(rows)
      .select([text.as('text'), instant.as('instant'), count.as('count')])
      .execute();
    expect(read.map((row) => ({ text: row.text, instant: database.capabilities.readTimestamp(row.instant), count: row.count === null ? null : Number(row.count) }))).toEqual([
      { text: 'tok_1', instant: new Date('2026-01-05T10:00:00.000Z'), count: 9_007_199_254_740_991 },
      { text: "it's \"quoted\"", instant: new Date('2026-01-05T10:01:00.000Z'), count: null },
    ]);
  });
});
