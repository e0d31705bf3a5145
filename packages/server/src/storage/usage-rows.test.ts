import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { VerifyCode } from '@keyward/core';
import type { Database } from './database.ts';
import { describeEachDialect } from './test-databases.ts';
import { StatementCounter } from '../testing/statement-counter.ts';
import { UsageStore, type UsageIncrement } from './usage-rows.ts';

const ORG = 'org_a';
const OTHER_ORG = 'org_b';
const at = (iso: string): Date => new Date(iso);

function increment(bucketStart: string, code: VerifyCode, count: number, overrides: Partial<UsageIncrement> = {}): UsageIncrement {
  return { bucketStart: at(bucketStart), organizationId: ORG, tokenId: 'tok_a', clientId: null, code, count, ...overrides };
}

describeEachDialect('UsageStore', (open, dialect) => {
  let database: Database;
  let usage: UsageStore;
  beforeEach(async () => {
    database = await open();
    usage = new UsageStore(database.db);
  });
  afterEach(async () => {
    await database.close();
  });

  const DAY = { from: at('2026-01-05T00:00:00Z'), to: at('2026-01-06T00:00:00Z') };

  it('adds to the stored counts of a bucket instead of replacing them', async () => {
    await usage.addUsage([increment('2026-01-05T10:00:00Z', 'VALID', 3)]);
    await usage.addUsage([increment('2026-01-05T10:00:00Z', 'VALID', 4), increment('2026-01-05T10:00:00Z', 'EXPIRED', 1)]);
    expect(await usage.queryUsage({ organizationId: ORG, ...DAY, granularity: 'minute' })).toEqual([{ start: at('2026-01-05T10:00:00Z'), total: 8, counts: { VALID: 7, EXPIRED: 1 } }]);
  });

  it('merges increments of the same counter given in one call', async () => {
    await usage.addUsage([increment('2026-01-05T10:00:00Z', 'VALID', 1), increment('2026-01-05T10:00:20Z', 'VALID', 2)]);
    expect(await usage.queryUsage({ organizationId: ORG, ...DAY, granularity: 'minute' })).toEqual([{ start: at('2026-01-05T10:00:00Z'), total: 3, counts: { VALID: 3 } }]);
  });

  it('sums minutes into UTC hours and days', async () => {
    await usage.addUsage([
      increment('2026-01-05T10:00:00Z', 'VALID', 1),
      increment('2026-01-05T10:59:00Z', 'VALID', 2),
      increment('2026-01-05T11:00:00Z', 'REVOKED', 4),
      increment('2026-01-05T23:59:00Z', 'VALID', 8),
      increment('2026-01-06T00:00:00Z', 'VALID', 16),
    ]);
    const range = { from: at('2026-01-05T00:00:00Z'), to: at('2026-01-07T00:00:00Z') };
    expect(await usage.queryUsage({ organizationId: ORG, ...range, granularity: 'hour' })).toEqual([
      { start: at('2026-01-05T10:00:00Z'), total: 3, counts: { VALID: 3 } },
      { start: at('2026-01-05T11:00:00Z'), total: 4, counts: { REVOKED: 4 } },
      { start: at('2026-01-05T23:00:00Z'), total: 8, counts: { VALID: 8 } },
      { start: at('2026-01-06T00:00:00Z'), total: 16, counts: { VALID: 16 } },
    ]);
    expect(await usage.queryUsage({ organizationId: ORG, ...range, granularity: 'day' })).toEqual([
      { start: at('2026-01-05T00:00:00Z'), total: 15, counts: { VALID: 11, REVOKED: 4 } },
      { start: at('2026-01-06T00:00:00Z'), total: 16, counts: { VALID: 16 } },
    ]);
  });

  it('answers minutes from `from` up to, not including, `to`', async () => {
    await usage.addUsage([increment('2026-01-05T09:59:00Z', 'VALID', 1), increment('2026-01-05T10:00:00Z', 'VALID', 2), increment('2026-01-05T11:00:00Z', 'VALID', 4)]);
    const buckets = await usage.queryUsage({ organizationId: ORG, from: at('2026-01-05T10:00:00Z'), to: at('2026-01-05T11:00:00Z'), granularity: 'hour' });
    expect(buckets).toEqual([{ start: at('2026-01-05T10:00:00Z'), total: 2, counts: { VALID: 2 } }]);
  });

  it('filters by token and by client, and never answers another organization', async () => {
    await usage.addUsage([
      increment('2026-01-05T10:00:00Z', 'VALID', 1, { tokenId: 'tok_a' }),
      increment('2026-01-05T10:00:00Z', 'VALID', 2, { tokenId: 'tok_s', clientId: 'cli_x' }),
      increment('2026-01-05T10:00:00Z', 'NOT_FOUND', 4, { tokenId: null }),
      increment('2026-01-05T10:00:00Z', 'VALID', 8, { organizationId: OTHER_ORG, tokenId: 'tok_o', clientId: 'cli_x' }),
    ]);
    const query = { organizationId: ORG, ...DAY, granularity: 'hour' as const };
    expect(await usage.queryUsage(query)).toEqual([{ start: at('2026-01-05T10:00:00Z'), total: 7, counts: { VALID: 3, NOT_FOUND: 4 } }]);
    expect((await usage.queryUsage({ ...query, tokenId: 'tok_a' }))[0]?.counts).toEqual({ VALID: 1 });
    expect((await usage.queryUsage({ ...query, clientId: 'cli_x' }))[0]?.counts).toEqual({ VALID: 2 });
    expect(await usage.queryUsage({ ...query, tokenId: 'tok_o' })).toEqual([]);
  });

  it('writes a batch larger than one statement holds, 1,000 counters a statement, all in one transaction', async () => {
    const counter = new StatementCounter();
    const counted = new UsageStore(database.db.withPlugin(counter), database.capabilities);
    const increments = Array.from({ length: 12_000 }, (_, i) => increment('2026-01-05T10:00:00Z', 'VALID', 1 + (i % 3), { tokenId: `tok_${i}` }));
    await counted.addUsage(increments);
    expect(counter.countOf('InsertQueryNode')).toBe(12);
    expect(await usage.queryUsage({ organizationId: ORG, ...DAY, granularity: 'day' })).toEqual([{ start: at('2026-01-05T00:00:00Z'), total: 24_000, counts: { VALID: 24_000 } }]);
    expect(await usage.queryUsage({ organizationId: ORG, ...DAY, granularity: 'day', tokenId: 'tok_11999' })).toEqual([{ start: at('2026-01-05T00:00:00Z'), total: 3, counts: { VALID: 3 } }]);
  });

  it("joins the caller's transaction, so its counts roll back with it", async () => {
    const failing = database.db.transaction().execute(async (trx) => {
      await new UsageStore(trx).addUsage([increment('2026-01-05T10:00:00Z', 'VALID', 5)]);
      throw new Error('the rest of the work failed');
    });
    await expect(failing).rejects.toThrow('the rest of the work failed');
    expect(await usage.queryUsage({ organizationId: ORG, ...DAY, granularity: 'minute' })).toEqual([]);
  });

  if (dialect === 'postgres') {
    it('cuts hours and days in UTC whatever the session time zone', async () => {
      await usage.addUsage([increment('2026-01-05T23:30:00Z', 'VALID', 1), increment('2026-01-06T00:30:00Z', 'VALID', 2)]);
      const days = await database.db.transaction().execute(async (trx) => {
        await sql`set local time zone 'Pacific/Auckland'`.execute(trx);
        return new UsageStore(trx).queryUsage({ organizationId: ORG, from: at('2026-01-05T00:00:00Z'), to: at('2026-01-07T00:00:00Z'), granularity: 'day' });
      });
      expect(days.map((bucket) => [bucket.start.toISOString(), bucket.total])).toEqual([
        ['2026-01-05T00:00:00.000Z', 1],
        ['2026-01-06T00:00:00.000Z', 2],
      ]);
    });
  }
});
