// usage_counts: verification counts per minute bucket (SPEC §6). The usage
// recorder adds to them in batches; GET /api/v1/usage reads them back summed
// per minute, hour or day. A server concern, so it stays out of the Store port.
import { setImmediate } from 'node:timers/promises';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { VERIFY_CODES, type VerifyCode } from '@keyward/core';
import { capabilitiesOf, type DialectCapabilities } from './dialect-capabilities.ts';
import type { Schema, Timestamp } from './schema.ts';

export interface UsageCountsTable {
  /** The start of the minute, UTC. */
  bucketStart: Timestamp;
  organizationId: string;
  /** '' when the verification named no known token. */
  tokenId: string;
  /** '' for personal tokens and unknown ones. */
  clientId: string;
  code: string;
  count: number;
}

type UsageSchema = Schema & { usageCounts: UsageCountsTable };

export type UsageGranularity = 'minute' | 'hour' | 'day';

/** `count` verifications of the minute starting at `bucketStart` answered `code`. */
export interface UsageIncrement {
  bucketStart: Date;
  organizationId: string;
  tokenId: string | null;
  clientId: string | null;
  code: VerifyCode;
  count: number;
}

export interface UsageQuery {
  organizationId: string;
  tokenId?: string | undefined;
  clientId?: string | undefined;
  /** Minute buckets starting at or after `from` and before `to`. */
  from: Date;
  to: Date;
  granularity: UsageGranularity;
}

export interface UsageBucket {
  start: Date;
  total: number;
  /** Only the codes that occurred. */
  counts: Partial<Record<VerifyCode, number>>;
}

const MINUTE_MS = 60_000;
/**
 * Rows per statement. A statement's rows travel as one JSON parameter (about
 * 100 bytes a row), so the SQL text is the same for every batch (one cached
 * prepared statement) and a flush builds no query nodes per value: 100,000
 * counters take ~0.67 s of CPU on SQLite instead of ~1 s through a multi-row
 * VALUES. SQLite runs a statement synchronously, on the event loop: 1,000
 * rows are ~7 ms, and the loop gets a turn between statements.
 */
const ROWS_PER_STATEMENT = 1_000;
const KNOWN_CODES: ReadonlySet<string> = new Set(VERIFY_CODES);

/** bucket start (ISO-8601, as both dialects read it from JSON), organization, token, client, code, count. */
type UsageRow = [bucketStart: string, organizationId: string, tokenId: string, clientId: string, code: VerifyCode, count: number];

/**
 * One row per primary key (a statement may not update a row twice on
 * PostgreSQL), sorted by it: replicas flushing the same counters at once then
 * lock rows in the same order and cannot deadlock each other.
 */
function toRows(increments: readonly UsageIncrement[]): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  // Most increments share a few minutes: each minute's text is made once.
  const minuteText = new Map<number, string>();
  for (const increment of increments) {
    if (!Number.isSafeInteger(increment.count) || increment.count <= 0) continue;
    const bucketMs = Math.floor(increment.bucketStart.getTime() / MINUTE_MS) * MINUTE_MS;
    let bucketStart = minuteText.get(bucketMs);
    if (bucketStart === undefined) minuteText.set(bucketMs, (bucketStart = new Date(bucketMs).toISOString()));
    const tokenId = increment.tokenId ?? '';
    // The primary key's order; fixed-width ISO minutes sort as the instants do.
    const key = `${increment.organizationId}|${bucketStart}|${tokenId}|${increment.code}`;
    const existing = rows.get(key);
    if (existing) existing[5] += increment.count;
    else rows.set(key, [bucketStart, increment.organizationId, tokenId, increment.clientId ?? '', increment.code, increment.count]);
  }
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
}

/** A {@link UsageRow}'s elements, in the insert's column order. */
const USAGE_ROW_TYPES = ['timestamp', 'text', 'text', 'text', 'text', 'bigint'] as const;

/**
 * @example
 * const usage = new UsageStore(database.db);
 * await usage.addUsage([{ bucketStart, organizationId, tokenId, clientId: null, code: 'VALID', count: 42 }]);
 * const buckets = await usage.queryUsage({ organizationId, from, to, granularity: 'hour' });
 */
export class UsageStore {
  private readonly db: Kysely<UsageSchema>;
  private readonly capabilities: DialectCapabilities;

  constructor(db: Kysely<Schema>, capabilities: DialectCapabilities = capabilitiesOf(db)) {
    this.db = db.withTables<{ usageCounts: UsageCountsTable }>();
    this.capabilities = capabilities;
  }

  /**
   * Adds the counts in one transaction: every row or none, so a failed call
   * can be retried without counting anything twice. One upsert statement per
   * 1,000 distinct counters, however many verifications they sum up.
   */
  async addUsage(increments: readonly UsageIncrement[]): Promise<void> {
    const rows = toRows(increments);
    if (rows.length === 0) return;
    const write = async (db: Kysely<UsageSchema>): Promise<void> => {
      for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
        // Requests answered from the cache (and reads on the verification reader) go on meanwhile.
        if (start > 0) await setImmediate();
        const { rows: source, columns } = this.capabilities.jsonArrayRows(JSON.stringify(rows.slice(start, start + ROWS_PER_STATEMENT)), USAGE_ROW_TYPES);
        await db
          .insertInto('usageCounts')
          .columns(['bucketStart', 'organizationId', 'tokenId', 'clientId', 'code', 'count'])
          .expression(
            db
              .selectFrom(source)
              .select(columns.map((column, index) => column.as(`c${index}`)))
              // SQLite reads `on conflict` right after a FROM as a join constraint unless a WHERE comes between.
              .where(sql<boolean>`true`),
          )
          .onConflict((conflict) =>
            conflict.columns(['organizationId', 'bucketStart', 'tokenId', 'code']).doUpdateSet((eb) => ({ count: eb('usageCounts.count', '+', eb.ref('excluded.count')) })),
          )
          .execute();
      }
    };
    if (this.db.isTransaction) await write(this.db);
    else await this.db.transaction().execute(write);
  }

  /** Counts per bucket and code, summed in SQL; only buckets with counts, oldest first. */
  async queryUsage(query: UsageQuery): Promise<UsageBucket[]> {
    const column = sql.ref('bucketStart');
    const start: RawBuilder<Date | string> = query.granularity === 'minute' ? sql<Date | string>`${column}` : this.capabilities.truncateTimestamp(column, query.granularity);
    let select = this.db
      .selectFrom('usageCounts')
      .where('organizationId', '=', query.organizationId)
      .where('bucketStart', '>=', query.from)
      .where('bucketStart', '<', query.to);
    if (query.tokenId !== undefined) select = select.where('tokenId', '=', query.tokenId);
    if (query.clientId !== undefined) select = select.where('clientId', '=', query.clientId);
    // sum() of a bigint is a numeric on PostgreSQL; cast back so the driver answers a number.
    const rows = await select
      .select([start.as('start'), 'code', sql<number>`cast(sum(${sql.ref('count')}) as bigint)`.as('count')])
      .groupBy([start, 'code'])
      .execute();

    const buckets = new Map<number, UsageBucket>();
    for (const row of rows) {
      if (!KNOWN_CODES.has(row.code)) continue;
      const startAt = this.capabilities.readTimestamp(row.start);
      const count = Number(row.count);
      let bucket = buckets.get(startAt.getTime());
      if (!bucket) {
        bucket = { start: startAt, total: 0, counts: {} };
        buckets.set(startAt.getTime(), bucket);
      }
      bucket.counts[row.code as VerifyCode] = (bucket.counts[row.code as VerifyCode] ?? 0) + count;
      bucket.total += count;
    }
    return [...buckets.values()].filter((bucket) => bucket.total > 0).sort((a, b) => a.start.getTime() - b.start.getTime());
  }
}
